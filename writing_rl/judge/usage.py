"""Running totals of what the judge cost: requests, retries, failures, tokens, latency."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


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
    latencies_s: list[float] = field(default_factory=list)

    def snapshot(self) -> dict[str, float]:
        lat = np.asarray(self.latencies_s, dtype=float)
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
