"""Kept teacher traces -> verl's multi-turn SFT parquet (`data.messages_key: messages`).

One row per kept pair and order: system and user messages are the GenRM prompt file rendered over
(prompt, A, B) exactly as the teacher saw them, the assistant message is the teacher's whole
output (its critique ending in `\\boxed{a, b}`). verl's MultiTurnSFTDataset puts the loss on
assistant turns only and reads no other column, so the extra columns are provenance.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from writing_rl.judge.evaluation import PairResult
from writing_rl.prompts import PromptTemplate

SFT_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("pair_id", pa.string()),
    ("order", pa.string()),
    ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("teacher_scores", pa.list_(pa.float64())),
])
"""`order` is chosen_first or chosen_second; `teacher_scores` are the teacher's (A, B) scores."""


def sft_rows(results: Sequence[PairResult], template: PromptTemplate) -> list[dict[str, Any]]:
    """Both orders of every pair the teacher got right in both orders."""
    rows = []
    for result in results:
        if not result.accurate:
            continue
        pair = result.pair
        for order, (text_a, text_b), comparison in (
                ("chosen_first", (pair.chosen, pair.rejected), result.chosen_first),
                ("chosen_second", (pair.rejected, pair.chosen), result.chosen_second)):
            messages = template.render(prompt=pair.prompt, response_a=text_a, response_b=text_b)
            rows.append({"id": f"{pair.id}:{order}", "pair_id": pair.id, "order": order,
                         "messages": [*messages, {"role": "assistant", "content": comparison.raw}],
                         "teacher_scores": list(comparison.scores or ())})
    return rows


def write_sft_parquet(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write atomically (a temporary file renamed into place), so an interrupted write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pylist(list(rows), schema=SFT_SCHEMA), partial)
    os.replace(partial, path)
