"""Best-of-k evaluation, RewardBench 2 style: can the judge pick the preferred answer among k?

A set holds one chosen answer and k-1 rejected ones. Round robin: every candidate meets every other
in both presentation orders, k(k-1) judgements. Each judgement gives its winner 1 point, or each
side 0.5 on a tie (a scores template's verdict is its higher score). The set is solved when the
chosen answer alone has the most points (the argmax); when it shares the top, the set is a tie and
not solved. A judgement without a verdict gives nobody a point and is counted as a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from writing_rl.data.rows import DataError, identified_rows, json_type, require_text
from writing_rl.judge.evaluation import PairResult, PreferencePair, evaluate_pairs, summarize
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.parsing import Verdict


@dataclass(frozen=True)
class CandidateSet:
    id: str
    prompt: str
    chosen: str
    rejected: tuple[str, ...]

    @property
    def candidates(self) -> tuple[str, ...]:
        """The chosen answer first, then the rejected ones."""
        return (self.chosen, *self.rejected)


@dataclass(frozen=True)
class SetResult:
    set: CandidateSet
    matches: tuple[tuple[int, int, PairResult], ...]
    """(i, j, result) for each pair of candidates i < j; in `result`, candidate i is the one shown
    first in `chosen_first` and second in `chosen_second`."""

    @property
    def points(self) -> list[float]:
        points = [0.0] * len(self.set.candidates)
        for i, j, match in self.matches:
            for comparison, first, second in ((match.chosen_first, i, j), (match.chosen_second, j, i)):
                if comparison.verdict == Verdict.A:
                    points[first] += 1.0
                elif comparison.verdict == Verdict.B:
                    points[second] += 1.0
                elif comparison.verdict == Verdict.TIE:
                    points[first] += 0.5
                    points[second] += 0.5
        return points

    @property
    def solved(self) -> bool:
        """The chosen answer (candidate 0) alone has the most points."""
        points = self.points
        return all(points[0] > p for p in points[1:])

    @property
    def tied(self) -> bool:
        """The chosen answer shares the most points with a rejected one."""
        points = self.points
        return points[0] == max(points) and not self.solved

    def as_record(self) -> dict[str, Any]:
        return {"id": self.set.id, "solved": self.solved, "tied": self.tied, "points": self.points,
                "matches": [{"first": i, "second": j, **match.as_record()} for i, j, match in self.matches]}


def is_candidate_set_file(path: str | Path, rows: Sequence[dict[str, Any]]) -> bool:
    """True when every row's `rejected` is an array (best-of-k), False when none is (pairs).

    A file mixing both layouts is refused at the first row that differs from row 1.
    """
    if not rows:
        raise DataError(f"{path}: no rows")
    first = isinstance(rows[0].get("rejected"), list)
    for number, row in enumerate(rows, start=1):
        if isinstance(row.get("rejected"), list) != first:
            layout = "an array (a best-of-k set)" if first else "a string (a pair)"
            raise DataError(f"{path}, row {number}: field 'rejected' is {json_type(row.get('rejected'))}, not "
                            f"{layout} as in row 1; a file holds either pairs (rejected: one string) or "
                            "best-of-k sets (rejected: an array of strings), not both")
    return first


def load_candidate_sets(path: str | Path, rows: Sequence[dict[str, Any]]) -> list[CandidateSet]:
    """Rows {id?, prompt, chosen: str, rejected: [str, ...]} as sets; a row without an id gets its row number."""

    sets = []
    for set_id, where, row in identified_rows(rows, str(path)):
        rejected = row.get("rejected")
        if not isinstance(rejected, list) or not rejected:
            raise DataError(f"{where}: field 'rejected' must be a non-empty array of strings")
        texts = tuple(require_text({"rejected": text}, "rejected", f"{where}, rejected item {m}")
                      for m, text in enumerate(rejected, start=1))
        sets.append(CandidateSet(set_id, require_text(row, "prompt", where), require_text(row, "chosen", where),
                                 texts))
    return sets


def split_degenerate(sets: Sequence[CandidateSet]) -> tuple[list[CandidateSet], list[CandidateSet]]:
    """(sets to judge, sets whose chosen answer is also among the rejected ones): those measure nothing."""
    degenerate = [s for s in sets if s.chosen in s.rejected]
    return [s for s in sets if s.chosen not in s.rejected], degenerate


def drop_repeated_rejected(sets: Sequence[CandidateSet]) -> tuple[list[CandidateSet], dict[str, int]]:
    """(the sets with each rejected answer kept once, in first-seen order; {set id: copies dropped} for the sets
    that had copies): a copy would be judged against itself and count as an extra candidate."""
    kept, dropped = [], {}
    for s in sets:
        unique = tuple(dict.fromkeys(s.rejected))
        if len(unique) < len(s.rejected):
            dropped[s.id] = len(s.rejected) - len(unique)
        kept.append(CandidateSet(s.id, s.prompt, s.chosen, unique))
    return kept, dropped


def judge_calls(sets: Sequence[CandidateSet]) -> int:
    """What a round robin in both orders costs: k(k-1) judgements per set of k candidates."""
    return sum(len(s.candidates) * (len(s.candidates) - 1) for s in sets)


def _match_id(set_number: int, i: int, j: int) -> str:
    return f"{set_number}:{i}:{j}"


def _matches(sets: Sequence[CandidateSet]) -> list[PreferencePair]:
    """One pair per two candidates of a set; "chosen" here only means "candidate i", shown first in one order."""
    return [PreferencePair(_match_id(n, i, j), s.prompt, s.candidates[i], s.candidates[j])
            for n, s in enumerate(sets) for i, j in combinations(range(len(s.candidates)), 2)]


def collect_sets(sets: Sequence[CandidateSet], matches: Sequence[PairResult]) -> list[SetResult]:
    """The sets whose every match is among `matches` (all of them after a full run, the finished ones
    after an interruption), in the order of `sets`."""
    by_id = {m.pair.id: m for m in matches}
    results = []
    for n, s in enumerate(sets):
        ids = [(i, j, _match_id(n, i, j)) for i, j in combinations(range(len(s.candidates)), 2)]
        if all(match_id in by_id for _, _, match_id in ids):
            results.append(SetResult(s, tuple((i, j, by_id[match_id]) for i, j, match_id in ids)))
    return results


async def evaluate_sets(judge: PairwiseJudge, sets: Sequence[CandidateSet], *, progress: bool = True,
                        finished: list[PairResult] | None = None) -> list[SetResult]:
    """Every set round robin in both orders. Finished matches are appended to `finished` as they
    complete, so an interrupted caller can still `collect_sets` the sets that were completed."""
    matches = await evaluate_pairs(judge, _matches(sets), progress=progress, finished=finished,
                                   desc="judging candidate pairs")
    return collect_sets(sets, matches)


def summarize_sets(results: Sequence[SetResult]) -> dict[str, float]:
    def ratio(n: float, d: int) -> float:
        return n / d if d else 0.0

    every_match = summarize([m for r in results for _, _, m in r.matches])
    chosen_matches = summarize([m for r in results for i, _, m in r.matches if i == 0])
    return {
        "sets": len(results),
        "mean_candidates": ratio(sum(len(r.set.candidates) for r in results), len(results)),
        "judgements": every_match["judgements"],
        "accuracy": ratio(sum(r.solved for r in results), len(results)),
        "tie_rate": ratio(sum(r.tied for r in results), len(results)),
        "random_baseline": ratio(sum(1 / len(r.set.candidates) for r in results), len(results)),
        # chosen against each rejected answer: right in both orders
        "pairwise_accuracy_both_orders": chosen_matches["accuracy_both_orders"],
        **{key: every_match[key] for key in ("position_consistency", "first_position_win_rate", "parse_failures",
                                             "judge_failures", "prompt_tokens", "completion_tokens",
                                             "cached_judgements")},
    }
