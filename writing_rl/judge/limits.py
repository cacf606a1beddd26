"""Request and token budgets for one judge endpoint, shared by every call in one process.

Providers enforce per-minute quotas on short windows, so a per-minute limit is spread evenly
(a leaky bucket that refills every second) instead of allowing a full minute's burst at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiolimiter import AsyncLimiter


def _per_minute_limiter(per_minute: float) -> AsyncLimiter | None:
    if per_minute <= 0:
        return None
    # One-second window; below 60/min the window stretches so that one unit fits in it.
    window_s = max(1.0, 60.0 / per_minute)
    return AsyncLimiter(max_rate=per_minute * window_s / 60.0, time_period=window_s)


class JudgeLimits:
    """max concurrency (semaphore) + requests/min + tokens/min, composed."""

    def __init__(self, max_concurrency: int, requests_per_minute: float = 0.0,
                 tokens_per_minute: float = 0.0):
        self._slots = asyncio.Semaphore(max_concurrency)
        self._requests = _per_minute_limiter(requests_per_minute)
        self._tokens = _per_minute_limiter(tokens_per_minute)

    @contextlib.asynccontextmanager
    async def slot(self, estimated_tokens: int) -> AsyncIterator[None]:
        """Wait for the rate budgets, then hold one concurrency slot for the request's duration."""
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            # A request larger than the whole bucket waits for a full bucket instead of failing.
            await self._tokens.acquire(min(float(estimated_tokens), self._tokens.max_rate))
        async with self._slots:
            yield
