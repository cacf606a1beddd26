"""A training step as one line of progress, from the metrics verl's file logger writes for it."""

from __future__ import annotations

import math
from typing import Any

from writing_rl.cpu.rehearsal import rollout_actor_gap


def number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def step_line(step: dict[str, Any], total: int) -> str:
    m = step.get("data", {})
    parts = [f"step {step.get('step')}/{total}"]
    reward = number(m, "critic/score/mean")
    if reward is not None:
        parts.append(f"reward {reward:+.3f}")
    calls = number(m, "judge/calls")
    if calls is not None:
        parts.append(f"judge {calls:.0f} calls, {number(m, 'judge/failures') or 0:.0f} failed")
    promotions = number(m, "writing_rl/promotions")
    if promotions is not None:
        parts.append(f"promotions {promotions:.0f}")
    excluded = number(m, "reward/no_signal_excluded")
    if excluded:
        parts.append(f"no-signal rollouts {excluded:.0f}")
    gap = rollout_actor_gap(m)
    if gap is not None:
        parts.append(f"rollout vs actor |dlogp| {gap:.1e}")
    seconds = number(m, "timing_s/step")
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)
