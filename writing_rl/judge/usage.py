"""Running totals of what the judge cost: requests, retries, failures, tokens, latency."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


class LatencyWindow:
    """The most recent latencies (bounded, so a long run cannot grow it without limit) and how many were
    ever recorded, so that a reader can take "the ones since my last look" by remembering `total`."""

    def __init__(self, capacity: int = 100_000):
        self._values: deque[float] = deque(maxlen=capacity)
        self.total = 0

    def append(self, value: float) -> None:
        self._values.append(value)
        self.total += 1

    def since(self, mark: int) -> list[float]:
        """Latencies recorded after `total` was `mark` (at most the window's capacity)."""
        count = min(self.total - mark, len(self._values))
        return list(self._values)[-count:] if count > 0 else []

    def __iter__(self) -> Iterator[float]:
        return iter(self._values)


@dataclass
class UsageMeter:
    """One per JudgeClient. `snapshot()` gives plain numbers for logs and metrics."""

    calls: int = 0
    """Judgements asked for (cache hits included)."""
    cache_hits: int = 0
    http_requests: int = 0
    """HTTP attempts sent, retries included."""
    failures: int = 0
    """Judgements that ended without an answer (after retries, or a non-retryable 4xx)."""
    retries: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies_s: LatencyWindow = field(default_factory=LatencyWindow)

    def snapshot(self) -> dict[str, float]:
        lat = np.fromiter(self.latencies_s, dtype=float)
        out: dict[str, float] = {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "http_requests": self.http_requests,
            "failures": self.failures,
            "retries": sum(self.retries.values()),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_p50_s": float(np.percentile(lat, 50)) if lat.size else 0.0,
            "latency_p95_s": float(np.percentile(lat, 95)) if lat.size else 0.0,
        }
        for kind, count in sorted(self.retries.items()):
            out[f"retries_{kind}"] = count
        return out
