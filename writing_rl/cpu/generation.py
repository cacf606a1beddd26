"""Batched sampling from a transformers causal LM on CPU: one padded forward pass per token for every waiting
request, each with its own temperature, top-p, top-k and token budget.

Log-probs are those of the sampled token under `softmax(logits / temperature)` before top-k/top-p filtering:
what verl's actor recomputes (`compute_log_prob` divides its logits by the rollout temperature), so verl's own
rollout-vs-actor metrics compare like with like. A greedy request (temperature 0) reports log-probs at
temperature 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

COMPLETED = "completed"


@dataclass(frozen=True)
class GenerationRequest:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    """-1 or 0: no top-k filtering (vLLM's convention)."""

    @classmethod
    def from_sampling_params(cls, prompt_ids: Sequence[int], params: dict[str, Any], default_max_tokens: int
                             ) -> GenerationRequest:
        """From the `sampling_params` dict verl's agent loop sends a rollout server."""
        max_tokens = params.get("max_tokens", params.get("max_new_tokens", default_max_tokens))
        return cls(prompt_ids=[int(t) for t in prompt_ids], max_tokens=max(1, int(max_tokens)),
                   temperature=float(params.get("temperature", 1.0)), top_p=float(params.get("top_p", 1.0)),
                   top_k=int(params.get("top_k", -1) or -1))


@dataclass
class Generated:
    token_ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)


def _left_padded(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids, mask


def _filtered(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Logits with what top-k and top-p exclude set to -inf (per row)."""
    vocab = logits.shape[-1]
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), torch.full_like(top_k, vocab))
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    ranks = torch.arange(vocab).expand_as(sorted_logits)
    drop = ranks >= k[:, None]
    probs = sorted_logits.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass strictly above each token
    drop |= before >= top_p[:, None]
    drop[:, 0] = False  # the most likely token always stays
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def _sample(logits: torch.Tensor, requests: list[GenerationRequest], generator: torch.Generator | None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(token per row, its log-prob under the tempered distribution)."""
    temperature = torch.tensor([r.temperature for r in requests], dtype=logits.dtype)
    greedy = temperature <= 0
    tempered = logits / torch.where(greedy, torch.ones_like(temperature), temperature)[:, None]
    log_probs = tempered.log_softmax(dim=-1)
    top_k = torch.tensor([r.top_k for r in requests], dtype=torch.long)
    top_p = torch.tensor([r.top_p for r in requests], dtype=logits.dtype)
    sampled = torch.multinomial(_filtered(tempered, top_k, top_p).softmax(dim=-1), 1, generator=generator)[:, 0]
    tokens = torch.where(greedy, logits.argmax(dim=-1), sampled)
    return tokens, log_probs.gather(-1, tokens[:, None])[:, 0]


@torch.no_grad()
def generate_batch(model: Any, requests: list[GenerationRequest], stop_ids: set[int], pad_id: int,
                   generator: torch.Generator | None = None) -> list[Generated]:
    """Sample every request's continuation together, with a KV cache. A row stops at a stop token (kept, as vLLM
    keeps the EOS) or at its `max_tokens`; finished rows ride along padded until the longest is done."""
    ids, mask = _left_padded([r.prompt_ids for r in requests], pad_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    results = [Generated() for _ in requests]
    active = torch.ones(len(requests), dtype=torch.bool)
    next_position = positions[:, -1] + 1
    for _ in range(max(r.max_tokens for r in requests)):
        tokens, log_probs = _sample(out.logits[:, -1, :].float(), requests, generator)
        for row in active.nonzero()[:, 0].tolist():
            token = int(tokens[row])
            results[row].token_ids.append(token)
            results[row].log_probs.append(float(log_probs[row]))
            if token in stop_ids or len(results[row].token_ids) >= requests[row].max_tokens:
                active[row] = False
        if not active.any():
            break
        step_ids = torch.where(active, tokens, torch.full_like(tokens, pad_id))[:, None]
        mask = torch.cat([mask, active.long()[:, None]], dim=-1)
        out = model(input_ids=step_ids, attention_mask=mask, position_ids=next_position[:, None],
                    past_key_values=out.past_key_values, use_cache=True)
        next_position = next_position + 1
    return results


@torch.no_grad()
def score(model: Any, prompt_ids: list[int], response_ids: list[int], temperature: float = 1.0) -> list[float]:
    """Log-prob of each response token after the prompt, under `softmax(logits / temperature)`."""
    ids = torch.tensor([prompt_ids + response_ids], dtype=torch.long)
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1, :].float()
    log_probs = (logits / (temperature if temperature > 0 else 1.0)).log_softmax(dim=-1)
    return log_probs.gather(-1, torch.tensor(response_ids)[:, None])[:, 0].tolist()
