"""The `reward.custom_reward_function.path` that `judge_backend=verl` needs, and nothing else.

verl 0.9.1's reward worker calls the reward manager only when a custom reward function is configured; with a
reward model enabled and none configured, it scores rollouts itself through `/classify`. Our managers judge
through the coordinator and never call this function.
"""

from __future__ import annotations

from typing import Any


def compute_score(*args: Any, **kwargs: Any) -> float:
    raise RuntimeError("writing_rl.verl_glue.genrm_route.compute_score is only a routing switch for verl's reward "
                       "worker: set reward.reward_manager.name to writing_rl or brpo, whose managers judge rollouts "
                       "themselves")
