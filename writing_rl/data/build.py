"""JSONL of writing prompts -> verl train/test parquet in the format DESIGN's contract names.

Input row: {"prompt": str, "references": [weakest, ..., strongest], "criteria": str?, "id": str?}.
Output row: data_source "writing", chat `prompt`, reward_model.ground_truth {prompt, target, criteria, id},
extra_info {index: id, split}. Ids are strings (they are the keys of the curriculum index file).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from writing_rl.data.rows import DataError, read_rows, require_text

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def verl_row(source: dict[str, Any], where: str, *, require_references: bool, system_prompt: str | None,
             fallback_id: str) -> dict[str, Any]:
    prompt = require_text(source, "prompt", where)
    references = source.get("references")
    if isinstance(references, str):
        raise DataError(f"{where}: 'references' is a single string; give a list, weakest first: "
                        '"references": ["..."]')
    if references is None or references == []:
        if require_references:
            raise DataError(f"{where}: missing or empty 'references' (a list of texts, weakest first); "
                            "pass --no-references for prompt-only data (BRPO)")
        references = []
    if not isinstance(references, list) or not all(isinstance(r, str) and r.strip() for r in references):
        bad = next((i for i, r in enumerate(references) if not (isinstance(r, str) and r.strip())), 0)
        raise DataError(f"{where}: references[{bad}] must be a non-empty string")
    criteria = source.get("criteria")
    if criteria is not None and (not isinstance(criteria, str) or not criteria.strip()):
        raise DataError(f"{where}: 'criteria' must be a non-empty string or absent")
    row_id = str(source["id"]) if source.get("id") is not None else fallback_id
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


def build_parquet(input_path: Path, out_dir: Path, *, test_size: int = 0, seed: int = 0,
                  require_references: bool = True, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
                  ) -> dict[str, int]:
    rows = [verl_row(r, f"{input_path}, row {n}", require_references=require_references,
                     system_prompt=system_prompt, fallback_id=str(n - 1))
            for n, r in enumerate(read_rows(input_path), start=1)]
    if not rows:
        raise DataError(f"{input_path}: no rows")
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        row_id = row["extra_info"]["index"]
        if row_id in first_row:
            raise DataError(f"{input_path}, row {number}: duplicate id {row_id!r} (first in row {first_row[row_id]})")
        first_row[row_id] = number
    if not 0 <= test_size < len(rows):
        raise DataError(f"--test-size {test_size} must be between 0 and {len(rows) - 1} for {len(rows)} rows")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    test_ids = set(order[:test_size])
    train = [r for i, r in enumerate(rows) if i not in test_ids]
    test = [r for i, r in enumerate(rows) if i in test_ids]
    for row in test:
        row["extra_info"]["split"] = "test"
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"train": len(train)}
    pq.write_table(pa.Table.from_pylist(train), out_dir / "train.parquet")
    if test:
        pq.write_table(pa.Table.from_pylist(test), out_dir / "test.parquet")
        counts["test"] = len(test)
    return counts
