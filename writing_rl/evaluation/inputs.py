"""What an evaluation reads: prompts, and each side's responses, keyed by prompt id.

Prompts: our verl parquet (`reward_model.ground_truth = {prompt, criteria, id}`, chat `prompt`) or rows
`{id, prompt, criteria?}` (JSONL, JSON, parquet). Responses: rows `{id, response}` (a string, or a list of
samples), or the parquet that verl's `main_generation_server` writes (the input rows plus `responses`, a list
of n samples per row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writing_rl.data.rows import DataError, identified_rows, json_type, read_rows, require_text, row_id
from writing_rl.rollout import strip_reasoning


@dataclass(frozen=True)
class EvalPrompt:
    id: str
    prompt: str
    messages: tuple[dict[str, str], ...]
    """What a policy endpoint is sent (the row's chat prompt, or the prompt as one user message)."""
    criteria: str | None


def _ground_truth(row: dict[str, Any]) -> dict[str, Any] | None:
    reward_model = row.get("reward_model")
    ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    return ground_truth if isinstance(ground_truth, dict) else None


def _verl_row_id(row: dict[str, Any], where: str) -> str | None:
    ground_truth = _ground_truth(row) or {}
    extra_info = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    for value in (ground_truth.get("id"), extra_info.get("index"), row.get("id")):
        if value is not None:
            return row_id({"id": value}, where)
    return None


def _chat_messages(value: Any, where: str) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(m, dict) for m in value):
        raise DataError(f"{where}: field 'prompt' must be a string or a list of chat messages, got {json_type(value)}")
    return tuple({"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in value)


def _prompt_of(row: dict[str, Any], prompt_id: str, where: str) -> EvalPrompt:
    ground_truth = _ground_truth(row)
    if ground_truth is not None:  # our verl parquet
        messages = _chat_messages(row.get("prompt"), where)
        users = [m["content"] for m in messages if m["role"] == "user"]
        text = str(ground_truth.get("prompt") or (users[-1] if users else ""))
        if not text.strip():
            raise DataError(f"{where}: no prompt text in reward_model.ground_truth.prompt or a user message")
        criteria = ground_truth.get("criteria")
    else:
        text = require_text(row, "prompt", where)
        messages = ({"role": "user", "content": text},)
        criteria = row.get("criteria")
    if criteria is not None and (not isinstance(criteria, str) or not criteria.strip()):
        raise DataError(f"{where}: 'criteria' must be a non-empty string or absent, got {json_type(criteria)}")
    return EvalPrompt(prompt_id, text, messages, criteria)


def load_prompts(path: Path) -> list[EvalPrompt]:
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows")

    return [_prompt_of(row, prompt_id, where)
            for prompt_id, where, row in identified_rows(rows, str(path), own_id=_verl_row_id)]


def _samples(row: dict[str, Any], where: str) -> list[str]:
    key = "responses" if "responses" in row else "response"
    value = row.get(key)
    if value is None:
        raise DataError(f"{where}: missing field 'response' (a string) or 'responses' (a list of strings)")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(s, str) for s in items):
        raise DataError(f"{where}: field {key!r} must be a string or a non-empty list of strings, "
                        f"got {json_type(value)}")
    # an empty response (e.g. only reasoning) stays: dropping it would hide a failure of the side that wrote it
    return [strip_reasoning(s) for s in items]


def load_responses(path: Path, side: str) -> dict[str, list[str]]:
    """{prompt id: [sample, ...]}; reasoning before a `</think>` is dropped, as in training."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"--{side} {path}: no rows")

    return {i: _samples(row, where) for i, where, row in identified_rows(rows, f"--{side} {path}", own_id=_verl_row_id)}


def check_coverage(prompts: Sequence[EvalPrompt], responses: dict[str, list[str]], side: str, source: str) -> None:
    """Every prompt needs a response on each side; name the first missing ids."""
    missing = [p.id for p in prompts if p.id not in responses]
    if missing:
        raise DataError(f"--{side} {source}: no response for {len(missing)} prompt id(s) {missing[:10]}"
                        f"{' ...' if len(missing) > 10 else ''}; ids must match the --prompts file's ids "
                        "(ground_truth.id / extra_info.index, or 'id')")
