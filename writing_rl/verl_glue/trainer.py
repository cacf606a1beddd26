"""Trainer mode `writing_rl` (`trainer.v1.trainer_mode=writing_rl`): verl's synchronous PPO trainer plus our
hooks: the job's coordinator created here (so it lives as long as the job), rollouts whose judgement failed
taken out of the update (`no_signal`), per-step reward metrics into verl's logger, the curriculum index saved
into every checkpoint and restored on resume, and the validation phase announced to the coordinator (verl
tells reward managers nothing about it)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from verl.trainer.ppo.v1.trainer_base import register_trainer

from writing_rl.curriculum.checkpoint import IndexSnapshot
from writing_rl.verl_glue.compatibility import TRAINER_MODE, raise_for_fatal, trainer_fit_problems
from writing_rl.verl_glue.coordinator import CoordinatorLostError, get_coordinator
from writing_rl.verl_glue.no_signal import exclude_failed_judgements
from writing_rl.verl_glue.settings import RewardSettings, reward_settings_from_config
from writing_rl.verl_glue.sync_mode import SyncModeTrainer

logger = logging.getLogger(__name__)
COORDINATOR_CALL_TIMEOUT_S = 600.0
"""Index writes and metrics are quick; this only bounds a coordinator that stopped answering."""


def _absolute(path: str) -> Path:
    """Relative checkpoint paths are resolved as verl resolves them: against the trainer's working directory."""
    return Path(path) if os.path.isabs(path) else Path(os.getcwd()) / path


@register_trainer(TRAINER_MODE)
class WritingTrainer(SyncModeTrainer):
    def __init__(self, config: Any):
        raise_for_fatal(trainer_fit_problems(config))  # before verl allocates anything
        self.settings: RewardSettings = reward_settings_from_config(config)
        self.coordinator: ray.actor.ActorHandle | None = None
        super().__init__(config)

    def init(self) -> None:
        # created from this process (verl's TaskRunner) before the reward workers, so the actor's lifetime is
        # the job's and not that of whichever reward worker happened to ask first
        self.coordinator = get_coordinator(self.settings)
        super().init()

    def _call_coordinator(self, method: str, *args: Any) -> Any:
        assert self.coordinator is not None, "WritingTrainer.init() creates the coordinator"
        try:
            return ray.get(getattr(self.coordinator, method).remote(*args), timeout=COORDINATOR_CALL_TIMEOUT_S)
        except (RayActorError, GetTimeoutError) as exc:
            raise CoordinatorLostError.from_ray(self.settings, exc) from exc

    def _step_folder(self) -> Path:
        return _absolute(self.config.trainer.default_local_dir) / f"global_step_{self.global_steps}"

    def _resumed_folder(self) -> Path:
        """The folder verl's `_load_checkpoint` loaded (it set `global_steps` from the folder's name)."""
        if self.config.trainer.resume_mode == "resume_path":
            return _absolute(str(self.config.trainer.resume_from_path))
        return self._step_folder()

    def on_init_end(self) -> None:
        super().on_init_end()
        if self.global_steps > 0 and self.settings.method == "writing_rl":
            self._restore_index(self._resumed_folder())

    def _restore_index(self, folder: Path) -> None:
        live = self.settings.index_path()
        snapshot = IndexSnapshot.load_from(folder, live.name)
        if snapshot is None:
            logger.warning("resumed at step %d from %s, which holds no curriculum index (writing_rl/%s): "
                           "training goes on with the live index %s, which may be ahead of the model",
                           self.global_steps, folder, live.name, live)
            return
        self._call_coordinator("restore_index", snapshot)
        logger.warning("curriculum index restored from %s into %s", folder, live)

    def _save_checkpoint(self) -> None:
        # the snapshot goes in before verl writes its tracker (latest_checkpointed_iteration.txt) and runs its
        # checkpoint callback, so a tracked checkpoint always holds its index and an uploader sees it
        snapshot = self._call_coordinator("save_index")
        if snapshot is not None:
            snapshot.save_into(self._step_folder())
        super()._save_checkpoint()

    def on_step_end(self) -> None:
        super().on_step_end()
        pending = getattr(self, "_pending_sync_metrics", None) or {}
        pending.update(self._call_coordinator("step_metrics"))
        self._pending_sync_metrics = pending

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        excluded = exclude_failed_judgements(batch)
        metrics["reward/no_signal_excluded"] = float(excluded)
        return super()._compute_advantage(batch, metrics)

    def _validate(self) -> dict[str, float]:
        self._call_coordinator("begin_validation")
        try:
            metrics = super()._validate()
        finally:
            judge_metrics = self._call_coordinator("end_validation")
        return {**metrics, **judge_metrics}
