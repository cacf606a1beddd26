"""The shape both our reward managers share: decode the rollout, hand it to the job's coordinator, wait."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import ray
from ray.exceptions import RayActorError
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from writing_rl.verl_glue.compatibility import TrainerFitError, raise_for_fatal, trainer_fit_problems
from writing_rl.verl_glue.coordinator import CoordinatorLostError, get_coordinator
from writing_rl.verl_glue.coordinator_link import CoordinatorLink
from writing_rl.verl_glue.sample import read_sample
from writing_rl.verl_glue.settings import reward_settings_from_config

logger = logging.getLogger(__name__)


class CoordinatedRewardManager(RewardManagerBase):
    """Subclasses name the method the coordinator scores their rollouts by ("writing_rl" or "brpo")."""

    method: ClassVar[str]

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None,
                 reward_router_address: str | None = None, **kwargs: Any):
        super().__init__(config, tokenizer, compute_score)
        problems = trainer_fit_problems(config)
        raise_for_fatal(problems)
        for problem in problems:
            logger.warning("writing-rl: %s", problem.message)
        self.settings = reward_settings_from_config(config)
        self.coordinator = get_coordinator(self.settings)
        self.link = CoordinatorLink(self.coordinator, self.settings, self.method)
        if self.settings.judge_backend == "verl":
            self._attach_router(reward_router_address)

    def _attach_router(self, address: str | None) -> None:
        """judge_backend=verl: the coordinator judges through the router verl started for the GenRM."""
        if not address:
            raise TrainerFitError("reward.reward_kwargs.judge_backend=verl, but verl gave the reward workers no reward "
                                  "router address: set reward.reward_model.enable=True with "
                                  "reward.reward_model.enable_resource_pool=True (JUDGE=verl in the scripts)")
        try:
            ray.get(self.coordinator.attach_verl_router.remote(address))
        except RayActorError as exc:
            raise CoordinatorLostError.from_ray(self.settings, exc) from exc

    async def run_single(self, data: DataProto) -> dict:
        # decoded on the event loop: the decode holds the GIL, so a thread-pool hop (~80 us of CPU) buys nothing
        sample = read_sample(data, self.tokenizer)
        result = await self.link.score(sample.to_dict())
        return {"reward_score": result["reward"], "reward_extra_info": result["extra"]}
