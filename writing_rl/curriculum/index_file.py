"""The index file `running_file/index_<experiment>.json`: `{"<id>": rung}`, sorted, one entry per line.

Written atomically (temporary file, fsync, rename, fsync of the folder) so that a crash at any moment
leaves either the old or the new state, never a torn file. Beside it, `index_<experiment>.history.jsonl`
gets one line per promotion (append + fsync). Only light imports: crash tests start this in a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
HISTORY_KEYS = ("step", "id", "from", "to")


class IndexFileError(ValueError):
    """The index file cannot be used; the message names the file, the key and the reason."""


def index_path(run_dir: str | Path, experiment: str) -> Path:
    return Path(run_dir) / f"index_{experiment}.json"


def history_path(index: Path) -> Path:
    return index.with_name(index.name.removesuffix(".json") + ".history.jsonl")


def entry_line(key: str, rung: int) -> str:
    """One line of the file; ids stay unescaped (ensure_ascii=False) so that `grep 🦄` finds them."""
    return f"  {json.dumps(str(key), ensure_ascii=False)}: {int(rung)}"


def render_index(state: Mapping[str, int]) -> str:
    """One `"id": rung` entry per line, keys sorted: readable, greppable, diffable."""
    if not state:
        return "{}\n"
    return "{\n" + ",\n".join([entry_line(key, state[key]) for key in sorted(state)]) + "\n}\n"


def parse_index(text: str, source: str | Path) -> dict[str, int]:
    """`{"<id>": rung}`; a leading byte-order mark (Windows editors write one) is read past, as data files are."""
    try:
        data = json.loads(text.removeprefix("\ufeff"))
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
    if path.is_dir():
        found = sorted(p.name for p in path.glob("index_*.json"))
        hint = f"; index files in it: {', '.join(found)}" if found else ""
        raise IndexFileError(f"{path} is a directory; give the index file (index_<experiment>.json){hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise IndexFileError(f"{path}: not found; create it with `writing-rl index create`") from exc
    return parse_index(text, path)


def write_index(path: str | Path, state: Mapping[str, int]) -> None:
    """Atomically replace the file with `state` (for tools; training writes through `Curriculum`)."""
    write_text_atomically(Path(path), render_index(state))


def write_text_atomically(path: Path, text: str) -> None:
    """Temporary file, fsync, rename, fsync of the folder: a crash leaves the old text or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def append_history(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Append one line per record. A torn last line (a crash mid-append) is closed first, so it never
    swallows the next record."""
    if not records:
        return
    append_lines(path, "".join(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n" for record in records))


def append_lines(path: str | Path, lines: str) -> None:
    """Append complete lines to an append-only JSONL file, durably. A torn last line (a crash, a full disk or a
    hand edit without a final newline) is closed first, so it never swallows the first appended line."""
    with open(path, "a+b") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                lines = "\n" + lines
        handle.write(lines.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


@dataclass
class HistoryRead:
    """The usable promotion records and one message per line that was skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _line_problem(line: str, last_and_torn: bool) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        if last_and_torn:
            return None, "incomplete last line (a crash while appending?)"
        return None, f"not valid JSON ({exc.msg})"
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}"
    missing = [key for key in HISTORY_KEYS if key not in record]
    if missing:
        return None, f"missing key(s) {missing}"
    if not isinstance(record["id"], str) or not all(
            isinstance(record[k], int) and not isinstance(record[k], bool) for k in ("step", "from", "to")):
        return None, "wrong types (id must be a string; step, from, to integers)"
    return record, None


def scan_history(path: str | Path) -> HistoryRead:
    """Every usable line of a history file; bad lines are reported (file, line number) and skipped."""
    path = Path(path)
    out = HistoryRead()
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return out
    lines = text.split("\n")
    torn = not text.endswith("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _line_problem(line, torn and number == len(lines))
        if record is not None:
            out.records.append(record)
        else:
            out.problems.append(f"{path}, line {number}: {problem}; skipped")
    return out


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The usable promotion records; each skipped line is logged as a warning."""
    scanned = scan_history(path)
    for problem in scanned.problems:
        logger.warning("history: %s", problem)
    return scanned.records
