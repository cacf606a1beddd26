"""`writing-rl data build`: user JSONL -> verl parquet, with errors that name the row."""

from __future__ import annotations

import argparse
from pathlib import Path

from writing_rl.data.build import DEFAULT_SYSTEM_PROMPT, build_parquet


def run_build(args: argparse.Namespace) -> int:
    result = build_parquet(args.input, args.out_dir, test_size=args.test_size, seed=args.seed,
                           require_references=not args.no_references,
                           system_prompt=None if args.no_system_prompt else args.system_prompt)
    for path, count in result.written.items():
        print(f"wrote {path}: {count} rows")
    if result.moved_stale:
        print(f"moved the test.parquet of an earlier build (its rows are in train.parquet now) to "
              f"{result.moved_stale}, so it is not used for validation by mistake")
    return 0


def add_data_commands(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build training data", description="Build verl training data.")
    commands = data.add_subparsers(dest="data_command", required=True)
    build = commands.add_parser(
        "build", help="JSONL prompts (+ reference ladders) -> train.parquet / test.parquet",
        description="Read rows {prompt, references: [weakest..strongest], criteria?, id?} (JSONL, a JSON "
                    "array or parquet; UTF-8) and write verl's parquet format to OUT_DIR/train.parquet (and "
                    "test.parquet with --test-size). Ids are strings; a row without one gets its 0-based "
                    "position. Without --test-size, a test.parquet of an earlier build in OUT_DIR is moved "
                    "to test.parquet.stale.")
    build.add_argument("input", type=Path, help="JSONL, JSON or parquet file of rows")
    build.add_argument("--out-dir", type=Path, required=True)
    build.add_argument("--test-size", type=int, default=0, help="rows held out for validation")
    build.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    build.add_argument("--no-references", action="store_true",
                       help="prompt-only data (BRPO); references become optional")
    build.add_argument("--system-prompt", default=DEFAULT_SYSTEM_PROMPT)
    build.add_argument("--no-system-prompt", action="store_true")
    build.set_defaults(handler=run_build)
