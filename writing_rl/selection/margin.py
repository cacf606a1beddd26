"""The margin: how far the policy trails the candidates on one prompt.

margin = (candidates that beat the policy's response in both orders) / K, in [0, 1]. 1 means every
candidate, even the weakest, beats the policy (the most to learn); 0 means none does. It needs the
policy's response judged against each candidate in both orders (2K judge calls per prompt), and none
of the candidate-vs-candidate calls, which are only spent on prompts that can still be selected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from writing_rl.selection.outcomes import Outcome


@dataclass(frozen=True)
class Margin:
    value: float | None
    """None when a judgement failed: the margin is unknown."""
    undecided: int
    """Candidates the judge could not separate from the policy (tie, orders disagree, unparseable)."""


def policy_margin(outcomes: Sequence[Outcome]) -> Margin:
    """`outcomes[i]`: the policy (first) against candidate i (second), both orders."""
    beaten_by = sum(o is Outcome.SECOND for o in outcomes)
    undecided = sum(o is Outcome.UNDECIDED for o in outcomes)
    if any(o is Outcome.FAILED for o in outcomes):
        return Margin(None, undecided)
    return Margin(beaten_by / len(outcomes), undecided)
