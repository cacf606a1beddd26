"""A `compute_score` for verl's own `naive` and `rate_limited` managers, as a user would wire a pairwise judge
into them (`reward.custom_reward_function.path=benchmarks/judge_score.py`): one judge call per rollout against
the row's reference, 1.0 when the rollout wins (or two, one per order, averaged). Used by
benchmarks/reward_path.py only."""

from __future__ import annotations

from typing import Any

import aiohttp

_session: aiohttp.ClientSession | None = None


def _user_message(response: str, reference: str) -> str:
    return (f"Which response is better?\n[The Start of Response A]\n{response}\n[The End of Response A]\n"
            f"[The Start of Response B]\n{reference}\n[The End of Response B]")


async def _verdict(base_url: str, first: str, second: str) -> str:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    body = {"model": "test-judge", "messages": [{"role": "user", "content": _user_message(first, second)}]}
    async with _session.post(f"{base_url}/chat/completions", json=body) as reply:
        return (await reply.json())["choices"][0]["message"]["content"]


async def judge_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None,
                      base_url: str = "", orders: int = 1, **kwargs: Any) -> float:
    """orders=2 also judges with the reference first and averages: the position-debiased judgement BRPO makes."""
    target = (ground_truth or {}).get("target") if isinstance(ground_truth, dict) else ground_truth
    reference = target if isinstance(target, str) else next(iter(target or [""]))
    wins = float("[[A]]" in await _verdict(base_url, solution_str, reference))
    if orders == 2:
        wins += "[[B]]" in await _verdict(base_url, reference, solution_str)
    return wins / orders
