"""Rollouts whose judgement failed carry no reward signal: they are taken out of the policy update.

A Writing-RL rollout whose judge could not be reached (after retries) has no verdict. Whatever number stands in
its reward, it must not move the policy, nor the baseline its siblings are compared with. So before verl computes
advantages, such a trajectory gets a zero `response_mask` (no policy-gradient, critic or entropy term; verl's
losses mask with it) and a group of its own (GRPO's mean and std are taken over its siblings only).
"""

from __future__ import annotations

from typing import Any

import torch
import transfer_queue as tq
from tensordict import NonTensorStack, TensorDict

NO_SIGNAL_FLAG = "wrl_failed"
"""Writing-RL only: a failed BRPO member already has reward 0, hence advantage 0, and stays in its group so that
the estimator's skew filter sees the same G as the scorer's `brpo_group_skewed`."""


def _failed(extra_fields: Any) -> bool:
    info = extra_fields.get("reward_extra_info", {}) if isinstance(extra_fields, dict) else {}
    return bool(info.get(NO_SIGNAL_FLAG))


def exclude_failed_judgements(batch: Any) -> int:
    """Mask the batch's trajectories whose judgement failed, in TransferQueue; returns how many."""
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                           select_fields=["uid", "response_mask", "extra_fields"])
    failed = [i for i, extra in enumerate(data["extra_fields"]) if _failed(extra)]
    if not failed:
        return 0
    masks = [torch.zeros_like(data["response_mask"][i]) for i in failed]
    uids = [f"{data['uid'][i]}#no-signal-{batch.keys[i]}" for i in failed]
    fields = TensorDict({"response_mask": torch.nested.as_nested_tensor(masks, layout=torch.jagged),
                         "uid": NonTensorStack(*uids)}, batch_size=len(failed))
    tq.kv_batch_put(keys=[batch.keys[i] for i in failed], partition_id=batch.partition_id, fields=fields)
    return len(failed)
