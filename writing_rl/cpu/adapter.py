"""The actor-side half of the `hf_cpu` rollout: what verl's `ActorRolloutRefWorker` holds as `self.rollout` and
calls in its naive weight sync (`update_weights` after every step: `resume(["weights"])`, the engine's
`(hf_name, full_tensor)` generator into `update_weights`, then `resume(["kv_cache"])`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout

from writing_rl.cpu.replica import server_name


class HfCpuServerAdapter(BaseRollout):
    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1):
        super().__init__(config, model_config, device_mesh)
        rollout_world = (self.config.tensor_model_parallel_size * self.config.data_parallel_size
                         * self.config.pipeline_model_parallel_size)
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank // rollout_world if replica_rank == -1 else replica_rank
        self.sends_weights = rank % rollout_world == 0
        """One rank per replica sends; every rank drains the generator (under FSDP2 each tensor is a collective)."""
        self._server: Any = None

    def _server_handle(self) -> Any:
        if self._server is None:  # the server starts after the actor workers
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        if self.sends_weights:
            await self._server_handle().wake_up.remote(tags=tags)

    async def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]], wire_format: str = "named_tensors",
                             **kwargs: Any) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the hf_cpu rollout takes full named tensors, not {wire_format!r}: use "
                                      "actor_rollout_ref.rollout.checkpoint_engine.backend=naive")
        state = {}
        for name, tensor in weights:
            full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
            if self.sends_weights:
                state[name] = full.detach().to("cpu", copy=True)
        if self.sends_weights:
            await self._server_handle().update_weights.remote(state, kwargs.get("global_steps"))

    async def release(self) -> None:
        if self.sends_weights:
            await self._server_handle().sleep.remote()
