"""Judge one BRPO group: every non-reference rollout against the reference, in every order and vote,
all at once under the judge client's job-wide limits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from writing_rl.brpo.group import MemberOutcome, Vote, outcome_from_votes
from writing_rl.judge.pairwise import PairwiseJudge

ORDERS = {"both": ("candidate_first", "candidate_second"),
          "candidate_first": ("candidate_first",),
          "candidate_second": ("candidate_second",)}


async def judge_against_reference(judge: PairwiseJudge, prompt: str, candidates: Mapping[int, str],
                                  reference: str, *, orders: str = "both", votes: int = 1,
                                  criteria: str | None = None) -> dict[int, MemberOutcome]:
    """Outcome per candidate key; (len(candidates) x orders x votes) judge calls."""
    order_names = ORDERS[orders]

    async def one(order: str, vote: int, text: str) -> Vote:
        a, b = (text, reference) if order == "candidate_first" else (reference, text)
        return Vote(order, vote, await judge.compare(prompt, a, b, criteria=criteria, vote=vote))

    keys: Sequence[int] = list(candidates)
    calls = [one(order, vote, candidates[key]) for key in keys for order in order_names for vote in range(votes)]
    results = await asyncio.gather(*calls)
    per_member = len(order_names) * votes
    return {key: outcome_from_votes(results[i * per_member:(i + 1) * per_member]) for i, key in enumerate(keys)}
