"""The prompts to select from: rows {prompt, criteria?, id?} of a JSONL, JSON or parquet file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from writing_rl.data.rows import DataError, read_rows, require_text, row_id, unique_ids


@dataclass(frozen=True)
class SelectionPrompt:
    id: str
    prompt: str
    criteria: str | None = None


def load_prompts(path: Path) -> list[SelectionPrompt]:
    """Every row's prompt, criteria and id; a row without an id gets its 0-based position (as `data build`)."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows")

    def where(number: int) -> str:
        return f"{path}, row {number}"

    ids = unique_ids([row_id(row, where(n)) for n, row in enumerate(rows, start=1)], where,
                     generated=lambda n: str(n - 1))
    prompts = []
    for number, (prompt_id, row) in enumerate(zip(ids, rows, strict=True), start=1):
        criteria = row.get("criteria")
        if criteria is not None:
            criteria = require_text(row, "criteria", where(number))
        prompts.append(SelectionPrompt(prompt_id, require_text(row, "prompt", where(number)), criteria))
    return prompts
