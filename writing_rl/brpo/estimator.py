"""The `brpo` advantage estimator: advantage = reward, no mean/std normalisation.

verl hands an estimator only token-level rewards, the response mask, the group uid and the
`algorithm` config. The reward manager therefore encodes everything in the reward: +1 / -1 for
rollouts compared with the group's reference, 0 for the reference itself and for failures.
Groups with |sum r| / G > `algorithm.brpo.skew_threshold` get zero advantage.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from writing_rl.brpo.skew import DEFAULT_SKEW_THRESHOLD, group_is_skewed


def skew_threshold(config: Any) -> float:
    brpo = config.get("brpo", None) if config is not None else None
    value = brpo.get("skew_threshold", DEFAULT_SKEW_THRESHOLD) if brpo is not None else DEFAULT_SKEW_THRESHOLD
    return float(value)


@register_adv_est("brpo")
def compute_brpo_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor,
                           index: np.ndarray | None = None, config: Any = None,
                           **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (advantages, returns), both (batch, response_length)."""
    scores = (token_level_rewards * response_mask).sum(dim=-1)
    keep = torch.ones_like(scores)
    if index is not None:
        groups: dict[Any, list[int]] = defaultdict(list)
        for row, uid in enumerate(index):
            groups[uid].append(row)
        threshold = skew_threshold(config)
        for rows in groups.values():
            if group_is_skewed(scores[rows].tolist(), threshold):
                keep[rows] = 0.0
    advantages = (scores * keep).unsqueeze(-1) * response_mask
    return advantages, advantages
