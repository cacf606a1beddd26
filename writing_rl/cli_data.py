"""`writing-rl data build`: user JSONL -> verl parquet, with errors that name the row."""

from __future__ import annotations

import argparse
from pathlib import Path

from writing_rl.data.build import DEFAULT_SYSTEM_PROMPT, build_parquet


def run_build(args: argparse.Namespace) -> int:
    counts = build_parquet(args.input, args.out_dir, test_size=args.test_size, seed=args.seed,
                           require_references=not args.no_references,
                           system_prompt=None if args.no_system_prompt else args.system_prompt)
    for split, count in counts.items():
        print(f"wrote {args.out_dir / (split + '.parquet')}: {count} rows")
    return 0


def add_data_commands(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build training data", description="Build verl training data.")
    commands = data.add_subparsers(dest="data_command", required=True)
    build = commands.add_parser(
        "build", help="JSONL prompts (+ reference ladders) -> train.parquet / test.parquet",
        description="Read JSONL rows {prompt, references: [weakest..strongest], criteria?, id?} and write "
                    "verl's parquet format to OUT_DIR/train.parquet (and test.parquet with --test-size).")
    build.add_argument("input", type=Path, help="JSONL (or parquet) file of rows")
    build.add_argument("--out-dir", type=Path, required=True)
    build.add_argument("--test-size", type=int, default=0, help="rows held out for validation")
    build.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    build.add_argument("--no-references", action="store_true",
                       help="prompt-only data (BRPO); references become optional")
    build.add_argument("--system-prompt", default=DEFAULT_SYSTEM_PROMPT)
    build.add_argument("--no-system-prompt", action="store_true")
    build.set_defaults(handler=run_build)
