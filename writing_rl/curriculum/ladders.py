"""Ladder lengths per prompt id, read from the training parquet (the ids the index file may hold)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from writing_rl.data.rows import DataError


def ladder_lengths(files: Iterable[str | Path]) -> dict[str, int]:
    ladders: dict[str, int] = {}
    for path in files:
        try:
            table = pq.read_table(path, columns=["reward_model", "extra_info"])
        except Exception as exc:
            raise DataError(f"{path}: cannot read as parquet ({exc})") from exc
        for number, (reward_model, extra_info) in enumerate(
                zip(table.column("reward_model").to_pylist(), table.column("extra_info").to_pylist(), strict=True),
                start=1):
            ground_truth = (reward_model or {}).get("ground_truth") or {}
            prompt_id = ground_truth.get("id", (extra_info or {}).get("index"))
            if prompt_id is None:
                raise DataError(f"{path}, row {number}: no id (reward_model.ground_truth.id or extra_info.index)")
            target = ground_truth.get("target")
            ladders[str(prompt_id)] = 1 if isinstance(target, str) else max(1, len(target or []))
    return ladders
