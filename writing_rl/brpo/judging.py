"""Judge BRPO candidates against a reference, in every order and vote, under the judge client's job-wide limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from writing_rl.brpo.group import MemberOutcome, Vote, outcome_from_votes
from writing_rl.judge.pairwise import PairwiseJudge

ORDERS = {"both": ("candidate_first", "candidate_second"),
          "candidate_first": ("candidate_first",),
          "candidate_second": ("candidate_second",)}


async def judge_candidate(judge: PairwiseJudge, prompt: str, candidate: str, reference: str, *,
                          orders: str = "both", votes: int = 1, criteria: str | None = None) -> MemberOutcome:
    """One candidate's outcome: (orders x votes) judge calls at once."""

    async def one(order: str, vote: int) -> Vote:
        a, b = (candidate, reference) if order == "candidate_first" else (reference, candidate)
        return Vote(order, vote, await judge.compare(prompt, a, b, criteria=criteria, vote=vote))

    return outcome_from_votes(await asyncio.gather(*(one(order, vote) for order in ORDERS[orders]
                                                     for vote in range(votes))))


async def judge_against_reference(judge: PairwiseJudge, prompt: str, candidates: Mapping[int, str],
                                  reference: str, *, orders: str = "both", votes: int = 1,
                                  criteria: str | None = None) -> dict[int, MemberOutcome]:
    """Outcome per candidate key; (len(candidates) x orders x votes) judge calls, all at once."""
    keys = list(candidates)
    outcomes = await asyncio.gather(*(judge_candidate(judge, prompt, candidates[key], reference, orders=orders,
                                                      votes=votes, criteria=criteria) for key in keys))
    return dict(zip(keys, outcomes, strict=True))
