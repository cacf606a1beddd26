"""Per-step GenRM metrics from the reward's per-rollout fields (what `writing_rl.genrm.reward.compute_score`
returned), logged by the `genrm_rl` trainer mode: the answer rates over every rollout of the step, and
both-order consistency over the step's pairs whose two orders are both in the batch (see `consistency`)."""

from __future__ import annotations

from typing import Any

from writing_rl.genrm.consistency import consistency

PREFIX = "genrm"
RATES = {"acc": "acc", "wrong_rate": "wrong", "tie_rate": "tie", "malformed_rate": "malformed"}
"""Logged name -> the reward's 0/1 field."""
REQUIRED_FIELDS = ("pair_id", "preferred", "verdict", *RATES.values())


def step_metrics(infos: list[dict[str, Any]]) -> dict[str, float]:
    """`genrm/acc`, `genrm/wrong_rate`, `genrm/tie_rate`, `genrm/malformed_rate` (means over rollouts),
    `genrm/both_order_consistency`, `genrm/both_order_accuracy` and `genrm/pairs_with_both_orders`.
    Raises ValueError naming the missing fields when a rollout was not scored by the GenRM reward."""
    for number, info in enumerate(infos, start=1):
        missing = [key for key in REQUIRED_FIELDS if key not in info]
        if missing:
            raise ValueError(f"GenRM step metrics: rollout {number} of the batch has no {missing} in its reward "
                             "extra info; trainer mode genrm_rl needs reward.custom_reward_function.path="
                             "pkg://writing_rl.genrm.reward (name compute_score)")
    if not infos:
        return {}
    metrics = {f"{PREFIX}/{name}": sum(float(info[field]) for info in infos) / len(infos)
               for name, field in RATES.items()}
    metrics.update({f"{PREFIX}/{key}": float(value) for key, value in consistency(infos).items()})
    return metrics
