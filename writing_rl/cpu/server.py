"""The rollout server of the `hf_cpu` engine: one Ray actor per replica holding a transformers copy of the
policy on CPU.

Requests that arrive while a batch is being generated wait and go together into the next one (one padded
`generate_batch` for everything waiting, up to `max_num_seqs`), as a continuous-batching server would group
them. Weights arrive from the actor after every step through verl's `update_weights` path (see `adapter.py`);
`global_steps` is the step whose weights produced a sample, which verl records with every rollout.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import torch
from verl.workers.rollout.replica import TokenOutput

from writing_rl.cpu.generation import COMPLETED, GenerationRequest, generate_batch, score

logger = logging.getLogger(__name__)
ABORTED = "aborted"


class HfCpuServer:
    """verl's token-in/token-out server interface (the calls `RolloutReplica` and `LLMServerClient` make)."""

    def __init__(self, model_path: str, max_model_len: int, default_max_tokens: int, max_num_seqs: int,
                 seed: int, load_format: str = "dummy", trust_remote_code: bool = False, torch_threads: int = 1):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(max(1, torch_threads))
        if load_format == "dummy":  # as vLLM does: random weights until the actor's arrive (verl syncs at start)
            config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                                          trust_remote_code=trust_remote_code).eval()
        else:
            self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32,
                                                              trust_remote_code=trust_remote_code).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.stop_ids = {int(t) for t in [*eos_ids, tokenizer.eos_token_id] if t is not None}
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.stop_ids)
        self.pad_id = int(pad)
        self.max_model_len = max_model_len
        self.default_max_tokens = default_max_tokens
        self.max_num_seqs = max(1, max_num_seqs)
        self.generator = torch.Generator().manual_seed(seed)
        self.global_steps: int | None = None
        self.weight_updates = 0
        self.batch_sizes: list[int] = []
        self._waiting: list[tuple[GenerationRequest, asyncio.Future]] = []
        self._wakeup = asyncio.Event()
        self._accepting = asyncio.Event()
        self._accepting.set()
        self._loop_task: asyncio.Task | None = None

    # --- generation -----------------------------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       **kwargs: Any) -> TokenOutput:
        budget = self.max_model_len - len(prompt_ids)
        if budget < 1:
            raise ValueError(f"prompt of {len(prompt_ids)} tokens leaves no room to generate within "
                             f"max_model_len={self.max_model_len}: raise data.max_prompt_length/max_response_length")
        await self._accepting.wait()
        request = GenerationRequest.from_sampling_params(prompt_ids, sampling_params, self.default_max_tokens)
        if request.max_tokens > budget:
            request = replace(request, max_tokens=budget)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        self._ensure_loop()
        self._wakeup.set()
        return await future

    def _ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[:self.max_num_seqs], self._waiting[self.max_num_seqs:]
                steps = self.global_steps
                self.batch_sizes.append(len(batch))
                try:
                    results = await asyncio.to_thread(generate_batch, self.model, [r for r, _ in batch],
                                                      self.stop_ids, self.pad_id, self.generator)
                except Exception as exc:  # every waiting caller gets the error, the server keeps serving
                    logger.exception("CPU rollout batch of %d failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(TokenOutput(token_ids=result.token_ids, log_probs=result.log_probs,
                                                      stop_reason=COMPLETED,
                                                      extra_fields={"global_steps": steps}))

    # --- weights --------------------------------------------------------------------------------------------
    async def update_weights(self, state_dict: dict[str, torch.Tensor], global_steps: int | None) -> int:
        """Load the actor's full weights (HF names); returns how many tensors were loaded."""
        missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
        unexpected = [n for n in unexpected if not n.endswith("rotary_emb.inv_freq")]
        tied = {"lm_head.weight"} if getattr(self.model.config, "tie_word_embeddings", False) else set()
        missing = [n for n in missing if n not in tied and not n.endswith("rotary_emb.inv_freq")]
        if missing or unexpected:
            raise RuntimeError(f"actor weights do not match the rollout model: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}")
        if tied:
            self.model.tie_weights()
        self.weight_updates += 1
        if global_steps is not None:
            self.global_steps = global_steps
        return len(state_dict)

    async def score(self, prompt_ids: list[int], response_ids: list[int], temperature: float = 1.0) -> list[float]:
        """Log-probs of a fixed text under the served weights (to check they equal the actor's)."""
        return await asyncio.to_thread(score, self.model, prompt_ids, response_ids, temperature)

    async def stats(self) -> dict[str, Any]:
        return {"global_steps": self.global_steps, "weight_updates": self.weight_updates,
                "batch_sizes": list(self.batch_sizes)}

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # --- lifecycle calls verl makes; a CPU copy has no device memory to free ----------------------------------
    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Answer what has not started with `stop_reason="aborted"`; hold new requests until resumed."""
        self._accepting.clear()
        waiting, self._waiting = self._waiting, []
        for _, future in waiting:
            if not future.done():
                future.set_result(TokenOutput(token_ids=[], stop_reason=ABORTED,
                                              extra_fields={"global_steps": self.global_steps}))
        return {"aborted": len(waiting)}

    async def resume_generation(self) -> None:
        self._accepting.set()

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None
