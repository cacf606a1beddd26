"""The index file `running_file/index_<experiment>.json`: `{"<id>": rung}`, sorted, one entry per line.

Written atomically (temporary file, fsync, rename, fsync of the folder) so that a crash at any moment
leaves either the old or the new state, never a torn file. Beside it, `index_<experiment>.history.jsonl`
gets one line per promotion (append + fsync). Only light imports: crash tests start this in a subprocess.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class IndexFileError(ValueError):
    """The index file cannot be used; the message names the file, the key and the reason."""


def index_path(run_dir: str | Path, experiment: str) -> Path:
    return Path(run_dir) / f"index_{experiment}.json"


def history_path(index: Path) -> Path:
    return index.with_name(index.name.removesuffix(".json") + ".history.jsonl")


def render_index(state: Mapping[str, int]) -> str:
    """One `"id": rung` entry per line, keys sorted: readable, greppable, diffable."""
    if not state:
        return "{}\n"
    lines = [f"  {json.dumps(str(key))}: {int(state[key])}" for key in sorted(state)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def parse_index(text: str, source: str | Path) -> dict[str, int]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IndexFileError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise IndexFileError(f"{source}: expected a JSON object {{\"<id>\": rung}}, got {type(data).__name__}")
    state: dict[str, int] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise IndexFileError(f"{source}: key {key!r}: rung must be an integer, got {value!r}")
        if value < 0:
            raise IndexFileError(f"{source}: key {key!r}: rung {value} is negative")
        state[str(key)] = value
    return state


def read_index(path: str | Path) -> dict[str, int]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise IndexFileError(f"{path}: not found; create it with `writing-rl index create`") from exc
    return parse_index(text, path)


def write_index(path: str | Path, state: Mapping[str, int]) -> None:
    """Atomically replace the file with `state`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(render_index(state))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def append_history(path: str | Path, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_history(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise IndexFileError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
    return records
