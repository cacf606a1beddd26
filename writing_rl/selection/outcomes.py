"""One pair of texts judged in both orders, reduced to who won. A win holds only in both orders."""

from __future__ import annotations

import enum

from writing_rl.judge.pairwise import Comparison
from writing_rl.judge.parsing import Verdict


class Outcome(enum.Enum):
    FIRST = "first"
    """The first text of the pair won in both orders."""
    SECOND = "second"
    UNDECIDED = "undecided"
    """A tie, the orders disagreeing, or an answer that could not be parsed."""
    FAILED = "failed"
    """The judge could not be reached for at least one order: no information."""


def both_orders(first_shown_first: Comparison, second_shown_first: Comparison) -> Outcome:
    """`first_shown_first` judged (first, second) as (A, B); `second_shown_first` judged them swapped."""
    if first_shown_first.failed or second_shown_first.failed:
        return Outcome.FAILED
    verdicts = (first_shown_first.verdict, second_shown_first.verdict)
    if verdicts == (Verdict.A, Verdict.B):
        return Outcome.FIRST
    if verdicts == (Verdict.B, Verdict.A):
        return Outcome.SECOND
    return Outcome.UNDECIDED
