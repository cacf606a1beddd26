"""Evaluate a judge on preference pairs: both presentation orders, accuracy and biases.

A pair is judged twice: chosen shown first (correct = [[A]]) and chosen shown second (correct
= [[B]]). A pair counts as accurate only when both orders are right, so position bias cannot
masquerade as skill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from writing_rl.data.rows import DataError, read_rows, require_text
from writing_rl.judge.pairwise import Comparison, PairwiseJudge
from writing_rl.judge.parsing import Verdict


@dataclass(frozen=True)
class PreferencePair:
    id: str
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class PairResult:
    pair: PreferencePair
    chosen_first: Comparison
    chosen_second: Comparison

    @property
    def accurate(self) -> bool:
        return self.chosen_first.verdict == Verdict.A and self.chosen_second.verdict == Verdict.B

    @property
    def consistent(self) -> bool:
        """Both orders parsed and point at the same underlying text (or both say tie)."""
        first, second = self.chosen_first.verdict, self.chosen_second.verdict
        return (first, second) in {(Verdict.A, Verdict.B), (Verdict.B, Verdict.A), (Verdict.TIE, Verdict.TIE)}

    def as_record(self) -> dict[str, Any]:
        def side(c: Comparison) -> dict[str, Any]:
            return {"verdict": c.verdict.value if c.verdict else None, "scores": c.scores, "raw": c.raw,
                    "error": c.error, "latency_s": round(c.latency_s, 4), "tokens": c.tokens,
                    "cached": bool(c.reply and c.reply.cached)}

        return {"id": self.pair.id, "accurate": self.accurate, "consistent": self.consistent,
                "chosen_first": side(self.chosen_first), "chosen_second": side(self.chosen_second)}


def load_pairs(path: str | Path) -> list[PreferencePair]:
    pairs = []
    seen: set[str] = set()
    for number, row in enumerate(read_rows(path), start=1):
        where = f"{path}, row {number}"
        pair_id = str(row.get("id", number))
        if pair_id in seen:
            raise DataError(f"{where}: duplicate id {pair_id!r}; ids must be unique")
        seen.add(pair_id)
        pairs.append(PreferencePair(pair_id, require_text(row, "prompt", where),
                                    require_text(row, "chosen", where), require_text(row, "rejected", where)))
    if not pairs:
        raise DataError(f"{path}: no rows")
    return pairs


async def evaluate_pairs(judge: PairwiseJudge, pairs: Sequence[PreferencePair], *,
                         progress: bool = True) -> list[PairResult]:
    async def judge_pair(pair: PreferencePair) -> PairResult:
        first, second = await asyncio.gather(
            judge.compare(pair.prompt, pair.chosen, pair.rejected),
            judge.compare(pair.prompt, pair.rejected, pair.chosen),
        )
        return PairResult(pair, first, second)

    tasks = [asyncio.ensure_future(judge_pair(p)) for p in pairs]
    with tqdm(total=len(tasks), desc="judging pairs", unit="pair", disable=not progress) as bar:
        for done in asyncio.as_completed(tasks):
            await done
            bar.update(1)
    return [t.result() for t in tasks]


def _words(text: str) -> int:
    return len(text.split())


def summarize(results: Sequence[PairResult]) -> dict[str, float]:
    comparisons = [(r, c, chosen_is_a) for r in results
                   for c, chosen_is_a in ((r.chosen_first, True), (r.chosen_second, False))]
    parsed = [c for _, c, _ in comparisons if c.verdict is not None]
    decisive = [(r, c, chosen_is_a) for r, c, chosen_is_a in comparisons
                if c.verdict in (Verdict.A, Verdict.B)]
    both_parsed = [r for r in results if r.chosen_first.verdict and r.chosen_second.verdict]
    preferred_len, rejected_len = [], []
    for r, c, chosen_is_a in decisive:
        judge_picked_chosen = (c.verdict == Verdict.A) == chosen_is_a
        winner, loser = (r.pair.chosen, r.pair.rejected) if judge_picked_chosen else (r.pair.rejected, r.pair.chosen)
        preferred_len.append(_words(winner))
        rejected_len.append(_words(loser))

    def ratio(n: int, d: int) -> float:
        return n / d if d else 0.0

    return {
        "pairs": len(results),
        "judgements": len(comparisons),
        "accuracy_both_orders": ratio(sum(r.accurate for r in results), len(results)),
        "accuracy_per_judgement": ratio(
            sum((c.verdict == Verdict.A) == chosen_is_a for _, c, chosen_is_a in decisive), len(comparisons)),
        "position_consistency": ratio(sum(r.consistent for r in both_parsed), len(both_parsed)),
        "first_position_win_rate": ratio(sum(c.verdict == Verdict.A for _, c, _ in decisive), len(decisive)),
        "tie_rate": ratio(sum(c.verdict == Verdict.TIE for c in parsed), len(parsed)),
        "parse_failures": sum(c.unparseable for _, c, _ in comparisons),
        "judge_failures": sum(c.failed for _, c, _ in comparisons),
        "mean_words_preferred": ratio(sum(preferred_len), len(preferred_len)),
        "mean_words_rejected": ratio(sum(rejected_len), len(rejected_len)),
        "prompt_tokens": sum(c.reply.prompt_tokens for _, c, _ in comparisons if c.reply),
        "completion_tokens": sum(c.reply.completion_tokens for _, c, _ in comparisons if c.reply),
        "cached_judgements": sum(bool(c.reply and c.reply.cached) for _, c, _ in comparisons),
    }
