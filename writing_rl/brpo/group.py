"""BRPO group maths, plain Python: reference choice and the all-conditions voting rule."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from writing_rl.judge.pairwise import Comparison
from writing_rl.judge.parsing import Verdict

WIN, LOSS, NO_SIGNAL = 1.0, -1.0, 0.0


def choose_reference(members: Sequence[int], uid: str, seed: int) -> int:
    """One member drawn uniformly, reproducible from (seed, uid); uids are fresh every step."""
    digest = hashlib.sha256(f"{seed}:{uid}".encode()).digest()
    return random.Random(digest).choice(sorted(members))


@dataclass
class Vote:
    """One judge call: the candidate shown first (order "candidate_first") or second."""

    order: str
    vote: int
    comparison: Comparison

    @property
    def candidate_won(self) -> bool:
        winner = Verdict.A if self.order == "candidate_first" else Verdict.B
        return self.comparison.verdict == winner


@dataclass
class MemberOutcome:
    """A rollout's BRPO reward and why."""

    reward: float
    is_reference: bool = False
    failed: bool = False
    votes: list[Vote] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """All parsed votes agree on who won (wins everywhere or loses everywhere)."""
        outcomes = {v.candidate_won for v in self.votes if v.comparison.verdict is not None}
        return len(outcomes) <= 1


def outcome_from_votes(votes: Sequence[Vote]) -> MemberOutcome:
    """+1 only if the candidate wins under every voting condition; a failed call gives 0 (no signal);
    ties, inconsistent orders and unparseable answers give -1."""
    if any(v.comparison.failed for v in votes):
        return MemberOutcome(NO_SIGNAL, failed=True, votes=list(votes))
    won = bool(votes) and all(v.candidate_won for v in votes)
    return MemberOutcome(WIN if won else LOSS, votes=list(votes))
