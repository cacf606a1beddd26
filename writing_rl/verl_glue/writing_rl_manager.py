"""Reward manager `writing_rl`: the policy's response against its prompt's current reference."""

from __future__ import annotations

from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from writing_rl.verl_glue.coordinator import get_coordinator
from writing_rl.verl_glue.sample import read_sample
from writing_rl.verl_glue.settings import reward_settings_from_config


@register("writing_rl")
class WritingRLRewardManager(RewardManagerBase):
    """win / tie / loss rewards; the coordinator owns the judge limits and the curriculum index."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, **kwargs: Any):
        super().__init__(config, tokenizer, compute_score)
        self.settings = reward_settings_from_config(config)
        self.coordinator = get_coordinator(self.settings)

    async def run_single(self, data: DataProto) -> dict:
        sample = await self.loop.run_in_executor(None, read_sample, data, self.tokenizer)
        result = await self.coordinator.score_writing.remote(sample.to_dict())
        return {"reward_score": result["reward"], "reward_extra_info": result["extra"]}
