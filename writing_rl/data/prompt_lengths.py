"""Prompt lengths in tokens, counted as verl counts them: the policy's tokenizer with its chat template."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

MAX_REPORTED = 10


@lru_cache(maxsize=4)
def _tokenizer(model_dir: str) -> Any:
    from verl.utils import hf_tokenizer

    return hf_tokenizer(model_dir)


def prompt_tokens(messages: list[dict[str, Any]], model_dir: str) -> int:
    tokenizer = _tokenizer(model_dir)
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True, return_dict=False)
    return len(ids)


def overlong_prompts(path: Path, rows: list[dict[str, Any]], model_dir: str, limit: int) -> list[str]:
    """One line per row of `path` whose prompt has more than `limit` tokens (capped, with a count of the rest)."""
    problems = []
    for number, row in enumerate(rows, start=1):
        messages = row.get("prompt")
        if not isinstance(messages, list | tuple):
            continue
        tokens = prompt_tokens(list(messages), model_dir)
        if tokens > limit:
            problems.append(f"{path}, row {number} (id {(row.get('extra_info') or {}).get('index')!r}): "
                            f"{tokens} tokens")
    if len(problems) > MAX_REPORTED:
        problems = [*problems[:MAX_REPORTED], f"... and {len(problems) - MAX_REPORTED} more row(s)"]
    return problems
