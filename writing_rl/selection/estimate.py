"""`--dry-run`: how many generations and judge calls a selection needs and what they cost, before any is sent.

Tokens are estimated as the judge client does: characters / 4. A completion is counted at its endpoint's
`max_tokens` (an upper bound), and so is every response inside a judge prompt. Judge calls: 2K per prompt
for the margins, then K(K-1) per ranked prompt: all eligible prompts at most, `--top` at least (more when
some are dropped as not orderable). Cached answers are free, so a resumed run costs less than this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import PromptTemplate
from writing_rl.selection.costs import total_usd, usd_cost, usd_text
from writing_rl.selection.endpoints import Endpoints
from writing_rl.selection.generation import generation_messages
from writing_rl.selection.prompts import SelectionPrompt


def estimated_tokens(text_chars: int) -> int:
    return text_chars // 4


@dataclass(frozen=True)
class JudgePrices:
    usd_per_mtok_in: float | None = None
    usd_per_mtok_out: float | None = None
    """None: not given, so unknown (costs that need it are reported as unknown, not as zero)."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        return usd_cost(prompt_tokens, completion_tokens, self.usd_per_mtok_in, self.usd_per_mtok_out)


def all_pairs_calls(prompts: int, candidates: int) -> int:
    """Every pair of the K+1 responses (policy included) judged in both orders."""
    return prompts * (candidates + 1) * candidates


def estimate(prompts: Sequence[SelectionPrompt], endpoints: Endpoints, judge: JudgeSettings,
             templates: tuple[PromptTemplate, PromptTemplate | None], prices: JudgePrices, *,
             system_prompt: str | None, top: int | None) -> dict[str, Any]:
    k = len(endpoints.candidates)
    n = len(prompts)
    prompt_tokens = [estimated_tokens(sum(len(m["content"]) for m in generation_messages(p.prompt, system_prompt)))
                     for p in prompts]
    generation = {}
    for endpoint in endpoints.all:
        tokens_in, tokens_out = sum(prompt_tokens), n * endpoint.settings.max_tokens
        generation[endpoint.name] = {"calls": n, "prompt_tokens": tokens_in, "completion_tokens_at_most": tokens_out,
                                     "usd_at_most": total_usd(endpoint.cost(tokens_in, tokens_out))}
    margin_in = ranking_in = 0
    policy_max = endpoints.policy.settings.max_tokens
    candidate_max = [c.settings.max_tokens for c in endpoints.candidates]
    for p in prompts:
        base = _judge_prompt_tokens(p, templates)
        margin_in += 2 * sum(base + policy_max + m for m in candidate_max)
        ranking_in += 2 * sum(base + candidate_max[i] + candidate_max[j] for i in range(k) for j in range(i + 1, k))
    margin_calls, ranking_calls_max = 2 * k * n, k * (k - 1) * n
    ranked_min = n if top is None else min(top, n)
    ranking_calls_min = 0 if k < 2 else k * (k - 1) * ranked_min
    calls_max = margin_calls + ranking_calls_max
    tokens_in_max = margin_in + ranking_in
    tokens_out_max = calls_max * judge.max_tokens
    return {
        "prompts": n, "candidates": k,
        "generations": n * (k + 1),
        "generation": generation,
        "judge_calls_margins": margin_calls,
        "judge_calls_ranking_at_least": ranking_calls_min if top is not None else 0,
        "judge_calls_ranking_at_most": ranking_calls_max,
        "judge_calls_at_most": calls_max,
        "judge_calls_all_pairs": all_pairs_calls(n, k),
        "judge_prompt_tokens_at_most": tokens_in_max,
        "judge_completion_tokens_at_most": tokens_out_max,
        "judge_usd_at_most": total_usd(prices.cost(tokens_in_max, tokens_out_max)),
        "usd_at_most": total_usd(prices.cost(tokens_in_max, tokens_out_max),
                                 *(g["usd_at_most"] for g in generation.values())),
    }


def _judge_prompt_tokens(prompt: SelectionPrompt, templates: tuple[PromptTemplate, PromptTemplate | None]) -> int:
    """The judge prompt's tokens without the two responses."""
    template = templates[1] if prompt.criteria and templates[1] is not None else templates[0]
    values = {"prompt": prompt.prompt, "response_a": "", "response_b": ""}
    if template.uses_criteria:
        values["criteria"] = prompt.criteria or ""
    return estimated_tokens(sum(len(m["content"]) for m in template.render(**values)))


def format_estimate(summary: dict[str, Any]) -> str:
    lines = [f"dry run: nothing was sent. {summary['prompts']} prompts x {summary['candidates']} candidates",
             f"generations: {summary['generations']}"]
    for name, g in summary["generation"].items():
        lines.append(f"  {name:<20} {g['calls']:>8} calls  {g['prompt_tokens']:>12} prompt tokens  "
                     f"<= {g['completion_tokens_at_most']:>12} completion tokens  <= {usd_text(g['usd_at_most'])}")
    lines += [f"judge calls: {summary['judge_calls_margins']} for the margins + "
              f"{summary['judge_calls_ranking_at_least']}..{summary['judge_calls_ranking_at_most']} for the ladders "
              f"(all pairs would be {summary['judge_calls_all_pairs']})",
              f"judge tokens: <= {summary['judge_prompt_tokens_at_most']} prompt, "
              f"<= {summary['judge_completion_tokens_at_most']} completion, "
              f"<= {usd_text(summary['judge_usd_at_most'])}",
              f"total: <= {usd_text(summary['usd_at_most'])} (completions counted at max_tokens; cached answers are "
              "free; give the prices: usd_per_mtok_in/out in the endpoints file, --judge-usd-per-mtok-in/out)"]
    return "\n".join(lines)
