"""The prompts to select from: rows {prompt, criteria?, id?} of a JSONL, JSON or parquet file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from writing_rl.data.rows import DataError, identified_rows, read_rows, require_text


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

    prompts = []
    for prompt_id, where, row in identified_rows(rows, str(path), generated=lambda n: str(n - 1)):
        criteria = row.get("criteria")
        if criteria is not None:
            criteria = require_text(row, "criteria", where)
        prompts.append(SelectionPrompt(prompt_id, require_text(row, "prompt", where), criteria))
    return prompts
