"""Trainer mode `genrm_rl` (`trainer.v1.trainer_mode=genrm_rl`): verl's synchronous PPO trainer for the GenRM's
GRPO with the verifiable reward `writing_rl.genrm.reward`, plus per-step metrics in verl's logger.

verl 0.9.1's V1 trainer turns a custom reward's extra keys into metrics only at validation; this mode reads the
reward's per-rollout fields of the step's batch from TransferQueue before advantages are computed and logs
`genrm/acc`, `genrm/wrong_rate`, `genrm/tie_rate`, `genrm/malformed_rate`, `genrm/both_order_consistency`,
`genrm/both_order_accuracy` and `genrm/pairs_with_both_orders` every step (`writing_rl.genrm.step_metrics`).
Consistency needs both orders of a pair in one batch: the rows of `writing-rl data genrm-rl` keep them adjacent,
and `data.shuffle=False` with an even `data.train_batch_size` keeps them in one step (preflight checks both).
"""

from __future__ import annotations

from typing import Any

import transfer_queue as tq
from verl.trainer.ppo.v1.trainer_base import register_trainer

from writing_rl.genrm.step_metrics import step_metrics
from writing_rl.verl_glue.sync_mode import SyncModeTrainer

GENRM_TRAINER_MODE = "genrm_rl"
GENRM_REWARD_PATH = "pkg://writing_rl.genrm.reward"
GENRM_REWARD_NAME = "compute_score"


def genrm_reward_problem(config: Any) -> str | None:
    """Why this config's reward cannot feed the per-step GenRM metrics (None: it can)."""
    function = config.reward.get("custom_reward_function", {}) or {}
    path, name = function.get("path"), function.get("name")
    if path == GENRM_REWARD_PATH and name == GENRM_REWARD_NAME:
        return None
    return (f"trainer.v1.trainer_mode={GENRM_TRAINER_MODE} logs the fields of the GenRM's verifiable reward, but "
            f"reward.custom_reward_function is path={path}, name={name}. Set "
            f"reward.custom_reward_function.path={GENRM_REWARD_PATH} and reward.custom_reward_function.name="
            f"{GENRM_REWARD_NAME}, or use trainer.v1.trainer_mode=sync for another reward.")


def reward_extra_infos(batch: Any) -> list[dict[str, Any]]:
    """What the reward function returned for each trajectory of the batch, as the reward loop stored it."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    return [dict(extra.get("reward_extra_info", {})) if isinstance(extra, dict) else {}
            for extra in data["extra_fields"]]


@register_trainer(GENRM_TRAINER_MODE)
class GenrmRlTrainer(SyncModeTrainer):
    def __init__(self, config: Any):
        problem = genrm_reward_problem(config)
        if problem:  # before verl allocates anything
            raise ValueError(problem)
        super().__init__(config)

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        metrics.update(step_metrics(reward_extra_infos(batch)))
        return super()._compute_advantage(batch, metrics)
