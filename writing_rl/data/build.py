"""JSONL of writing prompts -> verl train/test parquet in the format DESIGN's contract names.

Input row: {"prompt": str, "references": [weakest, ..., strongest], "criteria": str?, "id": str?}.
Output row: data_source "writing", chat `prompt`, reward_model.ground_truth {prompt, target, criteria, id},
extra_info {index: id, split}. Ids are strings (they are the keys of the curriculum index file); a row
without an id gets its 0-based position.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from writing_rl.data.rows import DataError, identified_rows, json_type, read_rows, require_text

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
SPLITS = ("train", "test")
STALE_SUFFIX = ".stale"


@dataclass(frozen=True)
class BuildResult:
    written: dict[Path, int]
    """Each file written, with its row count."""
    moved_stale: Path | None = None
    """Where a test.parquet left by an earlier build (with --test-size) was moved, if there was one."""


def _references(source: dict[str, Any], where: str, require_references: bool) -> list[str]:
    references = source.get("references")
    if isinstance(references, str):
        raise DataError(f"{where}: 'references' is a single string; give a list, weakest first: "
                        '"references": ["..."]')
    if references is None or references == []:
        if require_references:
            raise DataError(f"{where}: missing or empty 'references' (a list of texts, weakest first); "
                            "pass --no-references for prompt-only data (BRPO)")
        return []
    if not isinstance(references, list):
        raise DataError(f"{where}: references must be a list of strings (weakest first), "
                        f"got {json_type(references)}")
    bad = next((i for i, r in enumerate(references) if not (isinstance(r, str) and r.strip())), None)
    if bad is not None:
        raise DataError(f"{where}: references[{bad}] must be a non-empty string")
    return references


def verl_row(source: dict[str, Any], where: str, row_id: str, *, require_references: bool,
             system_prompt: str | None) -> dict[str, Any]:
    prompt = require_text(source, "prompt", where)
    references = _references(source, where, require_references)
    criteria = source.get("criteria")
    if criteria is not None and (not isinstance(criteria, str) or not criteria.strip()):
        raise DataError(f"{where}: 'criteria' must be a non-empty string or absent")
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
    messages.append({"role": "user", "content": prompt})
    return {
        "data_source": "writing",
        "prompt": messages,
        "ability": "writing",
        "reward_model": {"style": "judge", "ground_truth": {
            "prompt": prompt, "target": references or None, "criteria": criteria, "id": row_id}},
        "extra_info": {"index": row_id, "split": "train"},
    }


def check_out_dir(input_path: Path, out_dir: Path) -> None:
    """Refuse an --out-dir that is a file, and a build that would write over (or move) its own input."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out-dir {out_dir}: is an existing file; give a folder (it is created if missing)")
    source = input_path.resolve()
    for split in SPLITS:
        target = out_dir / f"{split}.parquet"
        if target.resolve() == source:
            raise DataError(f"{input_path}: is the input, and this build would replace it with {target}; "
                            "choose another --out-dir")


def _read_verl_rows(input_path: Path, require_references: bool, system_prompt: str | None
                    ) -> list[dict[str, Any]]:
    sources = read_rows(input_path)
    if not sources:
        raise DataError(f"{input_path}: no rows")

    return [verl_row(source, where, source_id, require_references=require_references, system_prompt=system_prompt)
            for source_id, where, source in identified_rows(sources, str(input_path), generated=lambda n: str(n - 1))]


def move_stale_test_file(out_dir: Path) -> Path | None:
    """A test.parquet from an earlier build with --test-size would still be found by VAL_FILE, and its
    rows are now in train.parquet too. It is moved aside rather than deleted: it may be all a user has."""
    stale = out_dir / "test.parquet"
    if not stale.exists():
        return None
    target = stale.with_name(stale.name + STALE_SUFFIX)
    stale.replace(target)
    return target


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        pq.write_table(pa.Table.from_pylist(rows), path)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc})") from exc


def build_parquet(input_path: Path, out_dir: Path, *, test_size: int = 0, seed: int = 0,
                  require_references: bool = True, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
                  ) -> BuildResult:
    check_out_dir(input_path, out_dir)
    rows = _read_verl_rows(input_path, require_references, system_prompt)
    if not 0 <= test_size < len(rows):
        raise DataError(f"--test-size {test_size} must be between 0 and {len(rows) - 1} for {len(rows)} rows")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    test_ids = set(order[:test_size])
    train = [r for i, r in enumerate(rows) if i not in test_ids]
    test = [r for i, r in enumerate(rows) if i in test_ids]
    for row in test:
        row["extra_info"]["split"] = "test"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--out-dir {out_dir}: cannot create it ({exc.strerror})") from exc
    written = {out_dir / "train.parquet": len(train)}
    write_rows(train, out_dir / "train.parquet")
    if test:
        written[out_dir / "test.parquet"] = len(test)
        write_rows(test, out_dir / "test.parquet")
        return BuildResult(written)
    return BuildResult(written, moved_stale=move_stale_test_file(out_dir))
