"""Reward manager `writing_rl`: the policy's response against its prompt's current reference."""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager import register

from writing_rl.verl_glue.coordinated_manager import CoordinatedRewardManager


@register("writing_rl")
class WritingRLRewardManager(CoordinatedRewardManager):
    """win / tie / loss rewards; the coordinator owns the judge limits and the curriculum index."""

    method = "writing_rl"
