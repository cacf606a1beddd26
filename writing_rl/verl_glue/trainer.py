"""Trainer mode `writing_rl` (`trainer.v1.trainer_mode=writing_rl`): verl's synchronous PPO trainer
plus one hook, so that the coordinator's per-step reward metrics reach verl's logger."""

from __future__ import annotations

import logging

import ray
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from writing_rl.verl_glue.settings import reward_settings_from_config

logger = logging.getLogger(__name__)
TRAINER_MODE = "writing_rl"


@register_trainer(TRAINER_MODE)
class WritingTrainer(PPOTrainerSync):
    def on_step_end(self) -> None:
        super().on_step_end()
        pending = getattr(self, "_pending_sync_metrics", None) or {}
        pending.update(fetch_step_metrics(self.config))
        self._pending_sync_metrics = pending


def fetch_step_metrics(config) -> dict[str, float]:
    """This step's metrics from the job's coordinator; {} before the first judgement."""
    name = reward_settings_from_config(config).coordinator_name()
    try:
        coordinator = ray.get_actor(name)
    except ValueError:
        return {}
    return ray.get(coordinator.step_metrics.remote(), timeout=120)
