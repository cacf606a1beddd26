"""verl on a CPU: a platform, plain gloo process groups and a rollout engine (`hf_cpu`), all given to verl
through its own registries and active only when `VERL_PLATFORM=cpu` is set (as `writing-rl rehearse` does).

What runs for real on CPU: verl's trainer (`fit()`), its FSDP2 actor (update, log-prob recompute, checkpoints),
its naive weight sync into the rollout, its agent loop and reward loop. What stays GPU-only: vLLM's sampling
kernels, NCCL, multi-GPU sharding.
"""

from __future__ import annotations

import os

CPU_PLATFORM = "cpu"
ROLLOUT_NAME = "hf_cpu"


def is_requested() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == CPU_PLATFORM


def activate() -> None:
    """Register the CPU platform and the `hf_cpu` rollout with verl, and use plain gloo (idempotent)."""
    from verl.workers.rollout import base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    import writing_rl.cpu.platform  # noqa: F401  (registers the platform)
    from writing_rl.cpu.process_group import use_plain_gloo

    use_plain_gloo()
    RolloutReplicaRegistry.register(ROLLOUT_NAME, _replica_class)
    # verl 0.9.1 has no public registration for the actor-side adapter: its lookup table is this dict
    rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = "writing_rl.cpu.adapter.HfCpuServerAdapter"


def _replica_class() -> type:
    from writing_rl.cpu.replica import HfCpuReplica

    return HfCpuReplica
