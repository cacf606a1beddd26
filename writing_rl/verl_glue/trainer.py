"""Trainer mode `writing_rl` (`trainer.v1.trainer_mode=writing_rl`): verl's synchronous PPO trainer plus
three hooks: per-step reward metrics into verl's logger, the curriculum index saved into every checkpoint,
and restored from it on resume."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from writing_rl.curriculum.checkpoint import restore_from_checkpoint, snapshot_index
from writing_rl.curriculum.index_file import index_path
from writing_rl.verl_glue.settings import reward_settings_from_config

logger = logging.getLogger(__name__)
TRAINER_MODE = "writing_rl"


@register_trainer(TRAINER_MODE)
class WritingTrainer(PPOTrainerSync):
    def on_init_end(self) -> None:
        super().on_init_end()
        if self.global_steps > 0:  # resumed from global_step_<N>
            settings = reward_settings_from_config(self.config)
            folder = Path(self.config.trainer.default_local_dir) / f"global_step_{self.global_steps}"
            live = index_path(settings.writing_rl.run_dir, settings.experiment)
            if restore_from_checkpoint(folder, live):
                logger.warning("curriculum index restored from %s", folder)
                _call_coordinator(self.config, "reload_index")

    def _save_checkpoint(self) -> None:
        super()._save_checkpoint()
        live = _call_coordinator(self.config, "save_index")
        if live:
            folder = Path(self.config.trainer.default_local_dir) / f"global_step_{self.global_steps}"
            snapshot_index(Path(live), folder if folder.is_absolute() else Path(os.getcwd()) / folder)

    def on_step_end(self) -> None:
        super().on_step_end()
        pending = getattr(self, "_pending_sync_metrics", None) or {}
        pending.update(fetch_step_metrics(self.config))
        self._pending_sync_metrics = pending


def _call_coordinator(config, method: str):
    """Call the job's coordinator; None when it does not exist yet (nothing judged so far)."""
    try:
        coordinator = ray.get_actor(reward_settings_from_config(config).coordinator_name())
    except ValueError:
        return None
    return ray.get(getattr(coordinator, method).remote(), timeout=300)


def fetch_step_metrics(config) -> dict[str, float]:
    """This step's metrics from the job's coordinator; {} before the first judgement."""
    return _call_coordinator(config, "step_metrics") or {}
