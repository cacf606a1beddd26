"""verl's V1 trainer, driven on CPU as far down as it goes without a GPU.

Real: the trainer class registered for the config's `trainer.v1.trainer_mode` (`WritingTrainer`, `GenrmRlTrainer`)
with verl's dataloaders, TransferQueue, sync `ReplayBuffer`,
`AgentLoopManagerTQ` / `AgentLoopWorkerTQ` running verl's single-turn agent loop, `RewardLoopManager` and its
workers (our reward managers or verl's naive one with a custom reward function), our coordinator (Writing-RL and
BRPO), `_compute_advantage` (the registered estimator), `_validate`, `_save_checkpoint`,
`_load_checkpoint` and the `on_*` hooks. Stand-ins play only the parts that need a GPU:
- `ScriptedLLMClient` plays vLLM: verl's agent loop takes its `LLMServerClient` as an argument, and this one
  answers each generation with the token ids of a scripted text;
- `WeightsStandIn` plays the FSDP actor worker group and the weight-sync manager (no weights on CPU).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verl.workers.rollout.llm_server import LLMServerClient
from verl.workers.rollout.replica import TokenOutput

from writing_rl.models.tiny import write_tiny_model

QUALITIES = re.compile(r"QUALITIES=([\w.,]+)")
BOXES = re.compile(r"BOXES=([\w.:,]+)")
FAIL = "FAIL"
"""A scripted quality that makes generation raise, as a crashed rollout would."""
JUDGE_FAIL = "JUDGEFAIL"
"""A scripted quality whose text makes the loopback judge refuse the request (HTTP 400): a failed judgement."""


TQ_OVERRIDES = ["transfer_queue.backend.SimpleStorage.num_data_storage_units=1"]
"""TransferQueue with one storage unit: its default of 8 plus the controller need more Ray CPUs than a test
cluster has, and `tq.init` then waits forever."""


def tiny_model_dir(target: Path) -> Path:
    """A local model folder verl accepts (the tiny Qwen2 config and the GPT-2 tokenizer): no weights, no hub.
    Enough for verl's config checks, its agent loop and its dataset code."""
    return write_tiny_model(target, max_position_embeddings=32768, weights=False)


Answer = Callable[[str, int], str]
"""(the decoded prompt, how many times that prompt was answered before) -> the generated text."""


def answer_with_quality(prompt: str, k: int) -> str:
    """`QUALITY=<q_k>` where the prompt says `QUALITIES=q_0,q_1,...` (cycling), so a prompt's n sessions get the n
    qualities; `FAIL` raises instead."""
    match = QUALITIES.search(prompt)
    qualities = match.group(1).split(",") if match else ["5"]
    quality = qualities[k % len(qualities)]
    if quality == FAIL:
        raise RuntimeError("scripted generation failure")
    if quality == JUDGE_FAIL:
        return "A piece of writing. QUALITY=5 JUDGE_FAULT=bad_request"
    return f"A piece of writing. QUALITY={quality}"


def answer_with_boxes(prompt: str, k: int) -> str:
    """A GenRM's answer: the k-th (cycling) of the score pairs `a:b` listed after the first `BOXES=` in the prompt,
    as `\\boxed{a, b}`; `x` answers without a box. Put `BOXES=...` into both texts of a pair: the first one in
    the prompt is that of the text shown as A, so each presentation order gets its own script."""
    match = BOXES.search(prompt)
    scores = match.group(1).split(",") if match else ["x"]
    score = scores[k % len(scores)]
    if score == "x":
        return "The critique ran out before the scores."
    a, b = score.split(":")
    return f"Both are fine. \\boxed{{{a}, {b}}}"


class ScriptedLLMClient(LLMServerClient):
    """Answers the k-th generation for a prompt with `answer(prompt, k)` (default `answer_with_quality`)."""

    def __init__(self, config: Any, model_dir: str, answer: Answer = answer_with_quality):
        super().__init__(config, load_balancer_handle=None)
        self.model_dir = model_dir
        self.answer = answer
        self._tokenizer: Any = None
        self._calls: dict[str, int] = defaultdict(int)

    def _text_for(self, prompt: str) -> str:
        k = self._calls[prompt]
        self._calls[prompt] += 1
        return self.answer(prompt, k)

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any],
                       **kwargs: Any) -> TokenOutput:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        text = self._text_for(self._tokenizer.decode(prompt_ids))
        return TokenOutput(token_ids=[*self._tokenizer.encode(text), self._tokenizer.eos_token_id],
                           stop_reason="completed")


class WeightsStandIn:
    """The actor worker group and weight-sync manager of a GPU run: checkpoints are marker files."""

    def __init__(self) -> None:
        self.saved: list[str] = []
        self.loaded: list[str] = []

    def save_checkpoint(self, local_path: str, *args: Any, **kwargs: Any) -> None:
        Path(local_path).mkdir(parents=True, exist_ok=True)
        (Path(local_path) / "weights.txt").write_text("stand-in weights\n")
        self.saved.append(local_path)

    def load_checkpoint(self, local_path: str, *args: Any, **kwargs: Any) -> None:
        self.loaded.append(local_path)

    def update_weights(self, *args: Any, **kwargs: Any) -> None:
        return None

    def sleep_replicas(self, *args: Any, **kwargs: Any) -> None:
        return None


class TrainerOnCpu:
    """The trainer of the config's `trainer.v1.trainer_mode`, set up as `PPOTrainer.init()` + `TaskRunnerV1`
    would, GPU parts replaced (see above). Ray and TransferQueue must be initialised by the caller."""

    def __init__(self, config: Any, model_dir: str, answer: Answer = answer_with_quality):
        from verl.experimental.reward_loop.reward_loop import RewardLoopManager
        from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ
        from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
        from verl.utils.skip import SkipManager

        from writing_rl.verl_glue.coordinator import get_coordinator
        from writing_rl.verl_glue.trainer import WritingTrainer

        trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
        trainer._init_tokenizer()
        trainer._init_dataloader()
        if isinstance(trainer, WritingTrainer):
            trainer.coordinator = get_coordinator(trainer.settings)  # what WritingTrainer.init() does first
        trainer.reward_loop_manager = RewardLoopManager(config=config, rm_resource_pool=None)
        weights = WeightsStandIn()
        trainer.actor_rollout_wg = weights
        trainer.checkpoint_manager = weights
        trainer.timing_raw = {}
        trainer._load_checkpoint()
        trainer.on_init_end()
        trainer.agent_loop_manager = AgentLoopManagerTQ.create(
            config=config, llm_client=ScriptedLLMClient(config, model_dir, answer), teacher_client=None,
            reward_loop_worker_handles=trainer.reward_loop_manager.reward_loop_worker_handles)
        SkipManager.init(config)
        self.trainer, self.weights = trainer, weights

    def training_step(self) -> tuple[dict[str, Any], dict[str, float]]:
        """What `fit` does for one step, minus the GPU work: submit a batch, let the agent loop and the reward
        loop run, sample it from verl's replay buffer, compute advantages, save (if due) and end the step.
        Returns (trajectory fields by TransferQueue key, the step's logged metrics from our hooks)."""
        import transfer_queue as tq

        t = self.trainer
        t.global_steps += 1
        t.prepare_step()
        batch, _ = t.replay_buffer.sample(global_steps=t.global_steps, partition_id="train",
                                          batch_size=t.config.data.train_batch_size)
        metrics: dict[str, Any] = {}
        batch = t._compute_advantage(batch, metrics)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["uid", "session_id", "rm_scores", "advantages", "extra_fields",
                                              "responses", "response_mask"])
        trajectories = {key: _row(data, i, t.tokenizer) for i, key in enumerate(batch.keys)}
        if t.config.trainer.save_freq > 0 and t.global_steps % t.config.trainer.save_freq == 0:
            t._save_checkpoint()
        t.on_step_end()
        step_metrics = {**metrics, **t._consume_sync_metrics()}  # what `fit` logs of them
        tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)
        return trajectories, step_metrics

    def validate(self) -> dict[str, float]:
        """verl's `_validate`, announced by our hooks as in `fit`."""
        t = self.trainer
        t.on_validate_begin()
        metrics = t._validate()
        t.on_validate_end()
        return metrics

    def shutdown(self) -> None:
        import ray

        for worker in [*self.trainer.agent_loop_manager.agent_loop_workers,
                       *self.trainer.reward_loop_manager.reward_loop_worker_handles]:
            ray.kill(worker)


def _row(data: Any, i: int, tokenizer: Any) -> dict[str, Any]:
    responses = data["responses"][i]
    advantages = data["advantages"][i]
    return {
        "uid": data["uid"][i], "session_id": int(data["session_id"][i]),
        "reward": float(data["rm_scores"][i].sum()),
        "advantage": float(advantages.abs().max()) * (1 if float(advantages.sum()) >= 0 else -1),
        "extra": data["extra_fields"][i].get("reward_extra_info", {}),
        "response": tokenizer.decode(responses.tolist(), skip_special_tokens=True),
        "trained_tokens": int(data["response_mask"][i].sum()),
    }
