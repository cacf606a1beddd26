"""What turns a training script's verl job into one that runs on this machine's CPU: the Hydra overrides appended
after the script's own (so they win) and the environment of the job's processes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from writing_rl.cpu import CPU_PLATFORM, ROLLOUT_NAME

FAKE_GPUS = 1
"""verl's resource pools count Ray "GPU" resources; a CPU job declares this many (one actor rank)."""
RAY_CPUS = 16
"""Each pool bundle asks for 3 CPUs: declared generously, or the pools never place on a 2-core machine."""

FP32_MIXED_PRECISION = ("param_dtype", "reduce_dtype", "buffer_dtype")


@dataclass(frozen=True)
class CpuJobShape:
    """The sizes of a dress rehearsal: small enough to step in seconds, large enough to exercise the job."""

    steps: int = 2
    batch_size: int = 2
    """Prompts per step (`data.train_batch_size`, also the PPO mini-batch: one update per step)."""
    group_size: int = 4
    max_prompt_length: int | None = None
    """None keeps the script's `data.max_prompt_length` (prompt tokens are cheap; cutting them changes the data)."""
    max_response_length: int = 32
    save_freq: int = 1
    test_freq: int = -1
    learning_rate: float | None = None
    """None keeps the script's `actor.optim.lr`."""


def cpu_overrides(shape: CpuJobShape, out_dir: Path, *, prompt_length: int) -> list[str]:
    """Hydra overrides for verl's whole trainer on CPU: the CPU platform's device, one fake GPU, FSDP2 in fp32 with
    sdpa attention and no torch.compile, the `hf_cpu` rollout, and the job's files under `out_dir`.
    `prompt_length` is the job's `data.max_prompt_length` (the shape's, or else the script's). No critic: verl 0.9.1
    cannot build one on a CPU (see `rehearsal.py`)."""
    tokens = prompt_length + shape.max_response_length
    overrides = [
        "trainer.device=cpu", f"trainer.n_gpus_per_node={FAKE_GPUS}", "trainer.nnodes=1",
        f"ray_kwargs.ray_init.num_cpus={RAY_CPUS}", f"+ray_kwargs.ray_init.num_gpus={FAKE_GPUS}",
        "+ray_kwargs.ray_init.include_dashboard=False",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        f"data.train_batch_size={shape.batch_size}", f"data.max_prompt_length={prompt_length}",
        f"data.max_response_length={shape.max_response_length}", "data.dataloader_num_workers=0",
        "actor_rollout_ref.actor.strategy=fsdp2", "actor_rollout_ref.actor.fsdp_config.strategy=fsdp2",
        "actor_rollout_ref.actor.fsdp_config.dtype=float32", "actor_rollout_ref.actor.use_torch_compile=False",
        # without it verl autocasts the actor's forward to bf16, and its log-probs drift from the fp32 rollout's
        *(f"++actor_rollout_ref.actor.fsdp_config.mixed_precision.{k}=fp32" for k in FP32_MIXED_PRECISION),
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile=False",
        "actor_rollout_ref.model.use_remove_padding=False",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={shape.batch_size}",
        f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={max(tokens, 1024) * 2}",
        f"actor_rollout_ref.rollout.name={ROLLOUT_NAME}", "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        f"actor_rollout_ref.rollout.n={shape.group_size}", "actor_rollout_ref.rollout.agent.num_workers=1",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        "reward.num_workers=1",
        f"trainer.total_training_steps={shape.steps}", f"trainer.save_freq={shape.save_freq}",
        f"trainer.test_freq={shape.test_freq}", f"trainer.default_local_dir={out_dir / 'checkpoints'}",
        "trainer.logger=[console,file]", "trainer.resume_mode=auto",
        f"hydra.run.dir={out_dir / 'hydra'}", "hydra.output_subdir=null",
    ]
    if shape.learning_rate is not None:
        overrides.append(f"actor_rollout_ref.actor.optim.lr={shape.learning_rate}")
    return overrides


def cpu_environment(out_dir: Path) -> dict[str, str]:
    """Environment of the job's driver; Ray's local cluster hands it to every worker it starts."""
    return {
        "VERL_PLATFORM": CPU_PLATFORM,
        # verl looks FSDP engines up by device and registers them for cuda/npu; the engine runs on the platform's
        "VERL_ENGINE_DEVICE": "cuda",
        "VERL_FILE_LOGGER_PATH": str(out_dir / "metrics.jsonl"),
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
        "RAY_DEDUP_LOGS": "0",
    }
