"""Per-step reward metrics from the coordinator's running counters (differences of two snapshots)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_JUDGE_COUNTERS = ("calls", "cache_hits", "http_requests", "failures", "retries", "prompt_tokens",
                   "completion_tokens")


def _delta(before: dict[str, Any], after: dict[str, Any], key: str) -> float:
    return float(after.get(key, 0)) - float(before.get(key, 0))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _brpo_group_metrics(prefix: str, b0: dict[str, Any], b1: dict[str, Any]) -> dict[str, float]:
    compared = _delta(b0, b1, "compared")
    return {
        f"{prefix}/groups": _delta(b0, b1, "groups"),
        f"{prefix}/win_rate": _ratio(_delta(b0, b1, "wins"), compared),
        f"{prefix}/both_order_consistency": _ratio(_delta(b0, b1, "consistent"), compared),
        f"{prefix}/judge_failure_rate": _ratio(_delta(b0, b1, "failures"), compared),
        f"{prefix}/parse_failure_rate": _ratio(_delta(b0, b1, "unparsed"), compared),
    }


def brpo_val_metrics(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Validation rollouts against the dataset's reference (groups of one), apart from training's win rate."""
    return _brpo_group_metrics("val-brpo", before, after)


def step_metrics(before: dict[str, Any], after: dict[str, Any], latencies_s: Sequence[float]) -> dict[str, float]:
    judge_before, judge_after = before.get("judge", {}), after.get("judge", {})
    metrics = {f"judge/{key}": _delta(judge_before, judge_after, key) for key in _JUDGE_COUNTERS}
    metrics["judge/failure_rate"] = _ratio(metrics["judge/failures"], metrics["judge/calls"])
    metrics["judge/tokens"] = metrics["judge/prompt_tokens"] + metrics["judge/completion_tokens"]
    lat = np.asarray(latencies_s, dtype=float)
    metrics["judge/latency_p50_s"] = float(np.percentile(lat, 50)) if lat.size else 0.0
    metrics["judge/latency_p95_s"] = float(np.percentile(lat, 95)) if lat.size else 0.0
    if "brpo" in after:
        b0, b1 = before.get("brpo", {}), after["brpo"]
        metrics.update(_brpo_group_metrics("brpo", b0, b1))
        metrics.update({
            "brpo/dropped_group_fraction": _ratio(_delta(b0, b1, "skewed_groups"), _delta(b0, b1, "groups")),
            "brpo/timed_out_groups": _delta(b0, b1, "timed_out_groups"),
            "brpo/late_members": _delta(b0, b1, "late_members"),
            "brpo/duplicate_sessions": _delta(b0, b1, "duplicate_sessions"),
            "brpo/discarded_judgements": _delta(b0, b1, "discarded_judgements"),
        })
    if "writing_rl" in after:
        w0, w1 = before.get("writing_rl", {}), after["writing_rl"]
        outcomes = {k: float(w1["outcomes"].get(k, 0)) - float(w0.get("outcomes", {}).get(k, 0))
                    for k in ("win", "tie", "loss", "failure")}
        judged = sum(outcomes.values())
        metrics.update({f"writing_rl/{k}_rate": _ratio(v, judged) for k, v in outcomes.items()})
        metrics.update({
            "writing_rl/parse_failure_rate": _ratio(_delta(w0, w1, "parse_failures"), judged),
            "writing_rl/promotions": _delta(w0, w1, "promotions"),
            "writing_rl/groups": _delta(w0, w1, "groups"),
            "writing_rl/mean_rung": float(w1["mean_rung"]),
            "writing_rl/mastered_fraction": _ratio(float(w1["mastered"]), float(w1["prompts"])),
            "writing_rl/index_edits_adopted": _delta(w0, w1, "edits_adopted"),
            "writing_rl/index_edits_rejected": _delta(w0, w1, "edits_rejected"),
            "writing_rl/index_edits_stale_kept": _delta(w0, w1, "edits_stale_kept"),
        })
    return metrics
