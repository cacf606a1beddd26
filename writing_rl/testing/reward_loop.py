"""Drive verl's own reward loop the way its agent loop does, on CPU: verl's `RewardLoopManager`
starts real `RewardLoopWorker` Ray actors, and each finished rollout goes, alone, to a randomly
chosen worker as a 1-item DataProto shaped exactly like `AgentLoopWorker._compute_score` builds it."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import ray
import torch
from tensordict import TensorDict
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopManager, RewardLoopWorker
from verl.experimental.reward_loop.router.naive_router import launch_router_process

from writing_rl.verl_glue.config import compose_trainer_config


def reward_loop_config(tokenizer_dir: str, overrides: Sequence[str] = ()) -> Any:
    """verl's composed config for a reward-loop run; the run directory (index, judge cache) is a fresh temporary
    folder unless an override names one."""
    base = [f"actor_rollout_ref.model.path={tokenizer_dir}", "reward.num_workers=2",
            "actor_rollout_ref.rollout.n=4", "trainer.v1.trainer_mode=writing_rl"]
    if not any(o.startswith("data.train_batch_size=") for o in overrides):
        base.append("data.train_batch_size=16")
    if not any(o.startswith("+reward.reward_kwargs.run_dir=") for o in overrides):
        base.append(f"+reward.reward_kwargs.run_dir={tempfile.mkdtemp(prefix='writing_rl_run_')}")
    return compose_trainer_config([*base, *overrides])


@contextmanager
def reward_workers(config: Any) -> Iterator[list[ray.actor.ActorHandle]]:
    """verl's RewardLoopManager and its workers; killed afterwards (their names are global)."""
    manager = RewardLoopManager(config)
    try:
        yield manager.reward_loop_workers
    finally:
        for worker in manager.reward_loop_workers:
            ray.kill(worker)


@contextmanager
def reward_workers_behind_router(config: Any, router_address: str) -> Iterator[list[ray.actor.ActorHandle]]:
    """verl's `RewardLoopWorker` actors as `RewardLoopManager` starts them when it hosts a reward model, given the
    router address its `RewardModelManager` would hand them (that manager needs GPUs to start vLLM)."""
    worker_class = ray.remote(RewardLoopWorker)
    workers = [worker_class.options(name=f"reward_loop_worker_{i}").remote(config, router_address)
               for i in range(int(config.reward.num_workers))]
    try:
        yield workers
    finally:
        for worker in workers:
            ray.kill(worker)


@contextmanager
def verl_router(worker_urls: Sequence[str]) -> Iterator[str]:
    """verl's own reward router (`NaiveRouter` in a process of its own, as verl starts it) in front of
    `worker_urls`; yields its `ip:port`."""
    address, process = launch_router_process(worker_urls=list(worker_urls))
    try:
        yield address
    finally:
        process.terminate()
        process.join(timeout=10)


def rollout_data(tokenizer: Any, row: dict[str, Any], response: str, uid: str, session_id: int) -> DataProto:
    """A 1-item DataProto as the agent loop sends it: unpadded prompt + response, row fields as kwargs."""
    messages = list(row["prompt"])
    prompt_ids = torch.tensor(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                            return_dict=False), dtype=torch.int64)
    response_ids = torch.tensor(tokenizer.encode(response) or [tokenizer.eos_token_id], dtype=torch.int64)
    input_ids = torch.cat([prompt_ids, response_ids])
    attention_mask = torch.ones_like(input_ids)
    batch = TensorDict({
        "prompts": prompt_ids[None], "responses": response_ids[None], "attention_mask": attention_mask[None],
        "input_ids": input_ids[None], "position_ids": torch.arange(len(input_ids))[None],
    }, batch_size=1)
    kwargs = {**row, "raw_prompt": messages, "index": row["extra_info"]["index"], "uid": uid, "session_id": session_id}
    non_tensor = {k: np.array([v], dtype=object) for k, v in kwargs.items()}
    non_tensor.update({"__num_turns__": np.array([2]), "tool_extra_fields": np.array([{}], dtype=object),
                       "prompt_len": np.array([len(prompt_ids)]), "response_len": np.array([len(response_ids)])})
    return DataProto(batch=batch, non_tensor_batch=non_tensor)


def send(workers: Sequence[ray.actor.ActorHandle], data: DataProto) -> ray.ObjectRef:
    return random.choice(list(workers)).compute_score.remote(data)
