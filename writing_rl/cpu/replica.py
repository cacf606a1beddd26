"""The `hf_cpu` rollout replica: verl's `LLMServerManager` builds one per rollout world (TP x DP x PP actor
ranks) and asks it to launch its server; here that is one `HfCpuServer` actor next to the replica's workers."""

from __future__ import annotations

import os

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from verl.workers.rollout.replica import RolloutReplica

from writing_rl.cpu import ROLLOUT_NAME
from writing_rl.cpu.server import HfCpuServer

SERVER_NAME_PREFIX = f"{ROLLOUT_NAME}_server"


def server_name(replica_rank: int, name_suffix: str = "") -> str:
    """The server actor's Ray name, which the actor-side adapter looks up to send weights."""
    return f"{SERVER_NAME_PREFIX}_{replica_rank}{name_suffix}"


def server_threads() -> int:
    """Generation and training take turns in a synchronous job, so the server may use the cores."""
    return max(1, min(4, os.cpu_count() or 1))


class HfCpuReplica(RolloutReplica):
    async def launch_servers(self) -> None:
        if self.nnodes != 1:
            raise ValueError(f"the {ROLLOUT_NAME} rollout runs one server per replica on one node; this replica "
                             f"spans {self.nnodes} nodes: lower actor_rollout_ref.rollout.tensor_model_parallel_size")
        node_id = (await self.workers[0].__ray_call__.remote(lambda w: ray.get_runtime_context().get_node_id())
                   if self.workers else ray.get_runtime_context().get_node_id())
        model = self.model_config
        config = self.config
        server = ray.remote(HfCpuServer).options(
            name=server_name(self.replica_rank, self.name_suffix),
            num_cpus=0,
            max_concurrency=self.max_concurrency,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
        ).remote(
            model_path=model.get("local_path") or model.path,
            max_model_len=config.max_model_len or config.prompt_length + config.response_length,
            default_max_tokens=config.response_length,
            max_num_seqs=config.max_num_seqs,
            seed=config.seed + self.replica_rank,
            load_format=config.load_format,
            trust_remote_code=bool(model.get("trust_remote_code", False)),
            torch_threads=server_threads(),
        )
        await server.stats.remote()  # the model is loaded: a broken model folder fails here, at start-up
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"{ROLLOUT_NAME}://{server_name(self.replica_rank, self.name_suffix)}"
