"""The shape both our reward managers share: decode the rollout, hand it to the job's coordinator, wait."""

from __future__ import annotations

from typing import Any, ClassVar

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from writing_rl.verl_glue.coordinator import get_coordinator
from writing_rl.verl_glue.sample import read_sample
from writing_rl.verl_glue.settings import reward_settings_from_config


class CoordinatedRewardManager(RewardManagerBase):
    """Subclasses name the coordinator method that scores one rollout."""

    coordinator_method: ClassVar[str]

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, **kwargs: Any):
        super().__init__(config, tokenizer, compute_score)
        self.settings = reward_settings_from_config(config)
        self.coordinator = get_coordinator(self.settings)

    async def run_single(self, data: DataProto) -> dict:
        sample = await self.loop.run_in_executor(None, read_sample, data, self.tokenizer)
        result = await getattr(self.coordinator, self.coordinator_method).remote(sample.to_dict())
        return {"reward_score": result["reward"], "reward_extra_info": result["extra"]}
