"""Check a verl training parquet before any GPU is used; every problem names the file and row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from writing_rl.data.rows import DataError, read_rows

MAX_REPORTED = 10


def _row_problems(row: dict[str, Any], require_references: bool) -> list[str]:
    problems = []
    if "writing" not in str(row.get("data_source", "")):
        problems.append(f"data_source={row.get('data_source')!r} must contain 'writing'")
    prompt = row.get("prompt")
    if not isinstance(prompt, list | tuple) or not prompt or not all(
            isinstance(m, dict) and m.get("role") and isinstance(m.get("content"), str) for m in prompt):
        problems.append("prompt must be a non-empty list of chat messages {role, content}")
    reward_model = row.get("reward_model")
    ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    if not isinstance(ground_truth, dict):
        problems.append("reward_model.ground_truth must be an object {prompt, target, criteria, id}")
    else:
        if not str(ground_truth.get("prompt") or "").strip():
            problems.append("reward_model.ground_truth.prompt is missing or empty")
        target = ground_truth.get("target")
        if require_references and not target:
            problems.append("reward_model.ground_truth.target is empty: Writing-RL needs at least one reference")
        elif target is not None and not isinstance(target, str) and (
                not isinstance(target, list | tuple) or not all(isinstance(t, str) and t.strip() for t in target)):
            problems.append("reward_model.ground_truth.target must be a string or a list of non-empty strings")
    extra_info = row.get("extra_info")
    if not isinstance(extra_info, dict) or extra_info.get("index") is None:
        problems.append("extra_info.index is missing")
    elif isinstance(ground_truth, dict) and ground_truth.get("id") is not None and \
            str(ground_truth["id"]) != str(extra_info["index"]):
        problems.append(f"extra_info.index={extra_info['index']!r} differs from ground_truth.id={ground_truth['id']!r}")
    return problems


def validate_training_file(path: str | Path, require_references: bool = False) -> tuple[int, list[str]]:
    """(row count, problems). Problems are capped at MAX_REPORTED with a count of the rest."""
    path = Path(path)
    if path.suffix != ".parquet":
        return 0, [f"{path}: verl reads parquet; build it with `writing-rl data build`"]
    try:
        rows = read_rows(path)
    except DataError as exc:
        return 0, [str(exc)]
    if not rows:
        return 0, [f"{path}: no rows"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        row_problems = _row_problems(row, require_references)
        index = (row.get("extra_info") or {}).get("index") if isinstance(row.get("extra_info"), dict) else None
        if index is not None:
            key = str(index)
            if key in seen:
                row_problems.append(f"duplicate id {key!r} (first in row {seen[key]})")
            seen.setdefault(key, number)
        problems += [f"{path}, row {number}: {p}" for p in row_problems]
    if len(problems) > MAX_REPORTED:
        problems = [*problems[:MAX_REPORTED], f"{path}: ... and {len(problems) - MAX_REPORTED} more problem(s)"]
    return len(rows), problems
