"""Cold-start traces for the GenRM: a teacher critiques every training pair in both orders.

A pair is kept only when the teacher prefers the chosen text in both orders (its score for the
chosen side strictly higher each time): a trace from a teacher that was right in one order only
carries its position bias into the student. Judging is `evaluate_pairs`, so the judge cache makes
a resumed run free and Ctrl-C keeps every pair finished so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from writing_rl.judge.evaluation import PairResult, PreferencePair, paid_tokens, summarize
from writing_rl.judge.parsing import Verdict
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import PromptTemplate

CHARS_PER_TOKEN = 4
"""The rough prompt-token estimate the judge client's tokens/min limiter also uses."""
DROP_REASONS = ("right_in_one_order", "wrong_in_both_orders", "no_verdict")


def drop_reason(result: PairResult) -> str | None:
    """None for a kept pair; else why it was dropped: one of DROP_REASONS.

    A tie counts as not preferring the chosen text. `no_verdict` (a judge failure or an unparseable
    answer in either order) is the only reason a rerun may change: failures are not cached.
    """
    if result.accurate:
        return None
    first, second = result.chosen_first.verdict, result.chosen_second.verdict
    if first is None or second is None:
        return "no_verdict"
    if first == Verdict.A or second == Verdict.B:
        return "right_in_one_order"
    return "wrong_in_both_orders"


@dataclass(frozen=True)
class Prices:
    """US dollars per million prompt (input) and completion (output) tokens; None when not given."""

    usd_per_mtok_in: float | None = None
    usd_per_mtok_out: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.usd_per_mtok_in is None and self.usd_per_mtok_out is None:
            return None
        return round((prompt_tokens * (self.usd_per_mtok_in or 0.0)
                      + completion_tokens * (self.usd_per_mtok_out or 0.0)) / 1e6, 6)


def estimate(pairs: Sequence[PreferencePair], template: PromptTemplate, settings: JudgeSettings,
             prices: Prices) -> dict[str, float | int | None]:
    """What a synthesis would send, before anything is sent: 2 calls per pair (both orders).

    Prompt tokens are estimated from the rendered messages at 4 characters a token (rough: English
    prose with a BPE tokenizer is usually 3.5-4.5); completion tokens are bounded by max_tokens.
    Cached judgements are not subtracted.
    """
    prompt_chars = sum(len(m["content"]) for p in pairs for a, b in ((p.chosen, p.rejected), (p.rejected, p.chosen))
                       for m in template.render(prompt=p.prompt, response_a=a, response_b=b))
    calls = 2 * len(pairs)
    prompt_tokens = prompt_chars // CHARS_PER_TOKEN
    completion_tokens = calls * settings.max_tokens
    return {"pairs": len(pairs), "calls": calls, "estimated_prompt_tokens": prompt_tokens,
            "max_completion_tokens": completion_tokens,
            "max_cost_usd": prices.cost(prompt_tokens, completion_tokens)}


def synthesis_report(results: Sequence[PairResult], prices: Prices) -> dict[str, float | int | None]:
    """Kept rate, both-order consistency, drop reasons, tokens paid in this run and their cost."""
    reasons = [drop_reason(r) for r in results]
    kept = reasons.count(None)
    evaluation = summarize(results)
    tokens = paid_tokens(c for r in results for c in (r.chosen_first, r.chosen_second))
    return {
        "pairs": len(results),
        "judgements": 2 * len(results),
        "kept_pairs": kept,
        "kept_rate": kept / len(results) if results else 0.0,
        "sft_rows": 2 * kept,
        # both orders name the same text (or both say tie), among pairs with a verdict in both orders
        "both_order_consistency": evaluation["position_consistency"],
        **{f"dropped_{reason}": reasons.count(reason) for reason in DROP_REASONS},
        "parse_failures": evaluation["parse_failures"],
        "judge_failures": evaluation["judge_failures"],
        **tokens,
        "cost_usd": prices.cost(tokens["prompt_tokens"], tokens["completion_tokens"]),
    }
