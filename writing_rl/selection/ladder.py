"""Order K candidate responses into a reference ladder from round-robin win counts.

Every pair of candidates is judged in both orders; a candidate's win count is the number of others
it beats in both orders. The candidates are orderable when the win counts are exactly 0, 1, ..., K-1:
then every pair was decided and there is no cycle (a complete tournament with distinct win counts is
transitive), so the ladder, weakest first, is the candidates sorted by win count. Anything else - a
tie, orders that disagree, an unparseable answer, a cycle A > B > C > A - leaves the ladder ambiguous.
The first undecided pair settles that, so the pairs after it are never judged (or paid for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

from writing_rl.selection.outcomes import Outcome


def candidate_pairs(k: int) -> list[tuple[int, int]]:
    """The K(K-1)/2 pairs of the round robin, each judged in both orders."""
    return list(combinations(range(k), 2))


@dataclass(frozen=True)
class LadderOrder:
    wins: tuple[int, ...]
    """Win count of each candidate (in the endpoints file's order)."""
    ladder: tuple[int, ...] | None
    """Candidate indices weakest first, or None when they cannot be ordered."""
    problem: str | None = None


def is_decided(outcome: Outcome) -> bool:
    """A pair whose outcome leaves the ladder possible; after any other, the remaining pairs are not judged."""
    return outcome in (Outcome.FIRST, Outcome.SECOND)


def order_candidates(k: int, outcomes: Mapping[tuple[int, int], Outcome], names: tuple[str, ...]) -> LadderOrder:
    """`outcomes[(i, j)]` for i < j: FIRST means candidate i beat candidate j in both orders. The pairs judged
    so far: a ranking stops at its first undecided or failed pair, since no ladder can come of it."""
    wins = [0] * k
    for (i, j), outcome in outcomes.items():
        if outcome is Outcome.FIRST:
            wins[i] += 1
        elif outcome is Outcome.SECOND:
            wins[j] += 1
    for (i, j), outcome in outcomes.items():
        if outcome is Outcome.FAILED:
            return LadderOrder(tuple(wins), None, f"judge failed: on {names[i]} vs {names[j]}")
        if outcome is Outcome.UNDECIDED:
            return LadderOrder(tuple(wins), None, f"not orderable: {names[i]} vs {names[j]} undecided (tie, orders "
                                                  "disagree or unparseable); the remaining pairs were not judged")
    if sorted(wins) != list(range(k)):
        counts = ", ".join(f"{name}={count}" for name, count in zip(names, wins, strict=True))
        return LadderOrder(tuple(wins), None, f"not orderable: a cycle (win counts {counts})")
    return LadderOrder(tuple(wins), tuple(sorted(range(k), key=lambda i: wins[i])))
