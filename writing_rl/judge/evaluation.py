"""Evaluate a judge on preference pairs: both presentation orders, accuracy and biases.

A pair is judged twice: chosen shown first (correct = [[A]]) and chosen shown second (correct
= [[B]]). A pair counts as accurate only when both orders are right, so position bias cannot
masquerade as skill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from writing_rl.data.preference_pairs import pair_texts
from writing_rl.data.rows import DataError, identified_rows, read_rows
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


def load_pairs(path: str | Path, rows: Sequence[dict[str, Any]] | None = None) -> list[PreferencePair]:
    """Pairs of a JSONL/JSON/parquet file; a row without an id (or with `"id": null`) gets its row number.

    `rows` are the file's rows when the caller has read them already.
    """
    rows = read_rows(path) if rows is None else rows
    if not rows:
        raise DataError(f"{path}: no rows")

    return [PreferencePair(pair_id, **pair_texts(row, where))
            for pair_id, where, row in identified_rows(rows, str(path))]


def in_pair_order(results: Sequence[PairResult], pairs: Sequence[PreferencePair]) -> list[PairResult]:
    """Results finished in any order (an interrupted run), put back in the order of `pairs`."""
    position = {pair.id: n for n, pair in enumerate(pairs)}
    return sorted(results, key=lambda r: position[r.pair.id])


def split_identical(pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(pairs to judge, pairs whose chosen and rejected texts are the same): those measure nothing."""
    identical = [p for p in pairs if p.chosen == p.rejected]
    return [p for p in pairs if p.chosen != p.rejected], identical


async def evaluate_pairs(judge: PairwiseJudge, pairs: Sequence[PreferencePair], *, progress: bool = True,
                         finished: list[PairResult] | None = None, desc: str = "judging pairs"
                         ) -> list[PairResult]:
    """Every pair in both orders; results in the order of `pairs`.

    Each result is also appended to `finished` the moment it is complete, so a caller whose run is
    interrupted (Ctrl-C cancels this coroutine) still holds every pair judged so far. On the way
    out, judgements still in flight are cancelled and awaited, so that nothing is left talking to
    a closed HTTP session.
    """
    finished = [] if finished is None else finished

    async def judge_pair(pair: PreferencePair) -> PairResult:
        # both orders run to the end before an error of either is raised: none is left in flight
        first, second = await asyncio.gather(
            judge.compare(pair.prompt, pair.chosen, pair.rejected),
            judge.compare(pair.prompt, pair.rejected, pair.chosen),
            return_exceptions=True,
        )
        for outcome in (first, second):
            if isinstance(outcome, BaseException):
                raise outcome
        return PairResult(pair, first, second)

    tasks = [asyncio.ensure_future(judge_pair(p)) for p in pairs]
    try:
        with tqdm(total=len(tasks), desc=desc, unit="pair", disable=not progress) as bar:
            for done in asyncio.as_completed(tasks):
                finished.append(await done)
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [t.result() for t in tasks]


def usable_judgements(results: Sequence[PairResult]) -> int:
    """Judgements that gave a verdict: neither a judge failure nor an unparseable answer."""
    return sum(c.verdict is not None for r in results for c in (r.chosen_first, r.chosen_second))


def paid_tokens(comparisons: Iterable[Comparison]) -> dict[str, int]:
    """Tokens paid in this run (cached judgements cost nothing now) and how many judgements were cached."""
    answered = [c.reply for c in comparisons if c.reply is not None]
    return {"prompt_tokens": sum(r.prompt_tokens for r in answered if not r.cached),
            "completion_tokens": sum(r.completion_tokens for r in answered if not r.cached),
            "cached_judgements": sum(r.cached for r in answered)}


def _words(text: str) -> int:
    return len(text.split())


def _ratio(n: int, d: int) -> float:
    return n / d if d else 0.0


def _picked_chosen(c: Comparison, chosen_is_a: bool) -> bool:
    """A decisive judgement (A or B) picked the chosen text."""
    return (c.verdict == Verdict.A) == chosen_is_a


def length_bias(results: Sequence[PairResult]) -> dict[str, float]:
    """How often the longer text wins, against how often the longer text is the chosen one.

    Only pairs whose texts differ in word count take part. `longer_is_chosen_rate` is what an
    unbiased judge that agrees with the labels would show as `longer_wins_rate`; their difference,
    `length_bias`, is positive for a judge that favours length beyond what the labels justify.
    """
    unequal = [r for r in results if _words(r.pair.chosen) != _words(r.pair.rejected)]
    longer_won = decisive = 0
    for r in unequal:
        chosen_longer = _words(r.pair.chosen) > _words(r.pair.rejected)
        for c, chosen_is_a in ((r.chosen_first, True), (r.chosen_second, False)):
            if c.verdict in (Verdict.A, Verdict.B):
                decisive += 1
                longer_won += _picked_chosen(c, chosen_is_a) == chosen_longer
    longer_is_chosen = _ratio(sum(_words(r.pair.chosen) > _words(r.pair.rejected) for r in unequal), len(unequal))
    longer_wins = _ratio(longer_won, decisive)
    return {"longer_is_chosen_rate": longer_is_chosen, "longer_wins_rate": longer_wins,
            "length_bias": longer_wins - longer_is_chosen if decisive else 0.0}


def summarize(results: Sequence[PairResult]) -> dict[str, float]:
    comparisons = [(r, c, chosen_is_a) for r in results
                   for c, chosen_is_a in ((r.chosen_first, True), (r.chosen_second, False))]
    parsed = [c for _, c, _ in comparisons if c.verdict is not None]
    decisive = [(r, c, chosen_is_a) for r, c, chosen_is_a in comparisons
                if c.verdict in (Verdict.A, Verdict.B)]
    both_parsed = [r for r in results if r.chosen_first.verdict and r.chosen_second.verdict]
    preferred_len, rejected_len = [], []
    for r, c, chosen_is_a in decisive:
        judge_picked_chosen = _picked_chosen(c, chosen_is_a)
        winner, loser = (r.pair.chosen, r.pair.rejected) if judge_picked_chosen else (r.pair.rejected, r.pair.chosen)
        preferred_len.append(_words(winner))
        rejected_len.append(_words(loser))

    return {
        "pairs": len(results),
        "judgements": len(comparisons),
        "accuracy_both_orders": _ratio(sum(r.accurate for r in results), len(results)),
        "accuracy_per_judgement": _ratio(
            sum(_picked_chosen(c, chosen_is_a) for _, c, chosen_is_a in decisive), len(comparisons)),
        "position_consistency": _ratio(sum(r.consistent for r in both_parsed), len(both_parsed)),
        "first_position_win_rate": _ratio(sum(c.verdict == Verdict.A for _, c, _ in decisive), len(decisive)),
        "tie_rate": _ratio(sum(c.verdict == Verdict.TIE for c in parsed), len(parsed)),
        "parse_failures": sum(c.unparseable for _, c, _ in comparisons),
        "judge_failures": sum(c.failed for _, c, _ in comparisons),
        "mean_words_preferred": _ratio(sum(preferred_len), len(preferred_len)),
        "mean_words_rejected": _ratio(sum(rejected_len), len(rejected_len)),
        **length_bias(results),
        **paid_tokens(c for _, c, _ in comparisons),
    }
