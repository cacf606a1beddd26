"""The longest request the judge can receive, in the judge's own tokens: what `max_model_len` must hold.

A Writing-RL request holds the prompt, a reference (the longest rung of the row's ladder) and one policy response;
a BRPO request holds the prompt and two policy responses. Policy responses are counted at their maximum,
`data.max_response_length` (policy tokens, taken as judge tokens: the tokenizers of one family agree closely).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from writing_rl.data.prompt_lengths import prompt_tokens
from writing_rl.prompts import load_template
from writing_rl.verl_glue.settings import RewardSettings


@dataclass(frozen=True)
class JudgeRequestLength:
    tokens: int
    """Prompt file with the row's texts, policy responses at their maximum, and the judge's max_tokens."""
    row_id: str


def longest_judge_request(rows: Iterable[dict[str, Any]], settings: RewardSettings, judge_model_dir: str,
                          max_response_length: int) -> JudgeRequestLength | None:
    brpo = settings.method == "brpo"
    if brpo:
        templates = (load_template(settings.brpo.template, expect_output="scores"),) * 2
    else:
        w = settings.writing_rl
        templates = (load_template(w.template, expect_output="verdict"),
                     load_template(w.criteria_template, expect_output="verdict"))
    policy_responses = 2 if brpo else 1
    longest: JudgeRequestLength | None = None
    for row in rows:
        truth = (row.get("reward_model") or {}).get("ground_truth") or {}
        references = truth.get("target") or [""]
        reference = max(([references] if isinstance(references, str) else list(references)), key=len)
        criteria = truth.get("criteria") or None
        template = templates[1] if criteria else templates[0]
        values = {"prompt": str(truth.get("prompt") or ""), "response_a": "" if brpo else str(reference),
                  "response_b": ""}
        if template.uses_criteria:
            values["criteria"] = str(criteria or "")
        tokens = (prompt_tokens(template.render(**values), judge_model_dir)
                  + policy_responses * max_response_length + settings.judge.max_tokens)
        if longest is None or tokens > longest.tokens:
            longest = JudgeRequestLength(tokens, str(truth.get("id") or (row.get("extra_info") or {}).get("index")))
    return longest
