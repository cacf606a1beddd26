"""Reward manager `brpo`: each rollout waits at the coordinator until its group has been judged."""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager import register

from writing_rl.verl_glue.coordinated_manager import CoordinatedRewardManager


@register("brpo")
class BrpoRewardManager(CoordinatedRewardManager):
    """+1 / -1 against the group's bootstrapped reference (0 for the reference and for failures)."""

    method = "brpo"
