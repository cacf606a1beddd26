"""`writing-rl data build`: user JSONL -> verl parquet, with errors that name the row."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from writing_rl.cli.select import add_select_command
from writing_rl.data.build import DEFAULT_SYSTEM_PROMPT, build_parquet
from writing_rl.data.preference_pairs import LAYOUTS, build_pairs
from writing_rl.genrm.rl_rows import GENRM_DATA_SOURCE, build_genrm_rl


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


def run_pairs(args: argparse.Namespace) -> int:
    result = build_pairs(args.input, args.out_dir, test_size=args.test_size, seed=args.seed, layout=args.layout,
                         min_words=args.min_words, max_words=args.max_words)
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    how = "detected from the columns" if result.detected else "from --layout"
    print(f"layout {result.layout} ({how}); {result.read} rows read")
    for reason, count in sorted(result.dropped.items()):
        print(f"dropped {count} pair(s): {reason}")
    for path, count in result.written.items():
        print(f"wrote {path}: {count} pairs")
    if result.moved_stale:
        print(f"moved the test.parquet of an earlier build to {result.moved_stale}, so it is not used by mistake")
    return 0


def run_genrm_rl(args: argparse.Namespace) -> int:
    written, moved_stale = build_genrm_rl(args.input, args.out_dir, template=args.template, seed=args.seed)
    for path, count in written.items():
        print(f"wrote {path}: {count} rows ({count // 2} pairs x 2 orders)")
    if moved_stale:
        print(f"moved the test.parquet of an earlier build to {moved_stale}, so it is not used by mistake")
    return 0


def add_pairs_command(commands: argparse._SubParsersAction) -> None:
    columns = "; ".join(f"{name}: {', '.join(names.values())}" for name, names in LAYOUTS.items())
    pairs = commands.add_parser(
        "pairs", help="preference file (LitBench or prompt/chosen/rejected) -> pairs parquet",
        description=f"Read a local preference file (.jsonl, .json, .csv or .parquet; UTF-8) and write "
                    f"OUT_DIR/train.parquet (and test.parquet with --test-size) with columns id, prompt, chosen, "
                    f"rejected. Layouts ({columns}) are detected from the columns unless --layout names one. "
                    f"Exact duplicates, pairs whose two texts are identical and pairs present in both directions "
                    f"are dropped and counted. A pair without an id gets one made from its texts (stable across "
                    f"rebuilds).")
    pairs.add_argument("input", type=Path, help="preference file (.jsonl, .json, .csv or .parquet)")
    pairs.add_argument("--out-dir", type=Path, required=True, help="folder for train.parquet / test.parquet")
    pairs.add_argument("--test-size", type=int, default=0,
                       help="at least this many pairs held out in test.parquet, whole groups of pairs that share a "
                            "prompt or a text at a time, so no prompt or story is in both splits (default 0: every "
                            "pair in train.parquet, and a test.parquet of an earlier build is moved to "
                            "test.parquet.stale)")
    pairs.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    pairs.add_argument("--layout", choices=["auto", *LAYOUTS], default="auto",
                       help="column names of the input (default: detected and reported)")
    pairs.add_argument("--min-words", type=int, default=None,
                       help="drop pairs where either text has fewer words (default: no limit)")
    pairs.add_argument("--max-words", type=int, default=None,
                       help="drop pairs where either text has more words (default: no limit)")
    pairs.add_argument("--json", action="store_true", help="print one JSON line: layout, counts, files")
    pairs.set_defaults(handler=run_pairs)


def add_genrm_rl_command(commands: argparse._SubParsersAction) -> None:
    genrm_rl = commands.add_parser(
        "genrm-rl", help="pairs -> verl RL rows for training the GenRM (both orders, verifiable reward)",
        description=f"Read pairs (the --out-dir of `writing-rl data pairs`, i.e. a folder with train.parquet and "
                    f"optionally test.parquet, or one pairs file with id?, prompt, chosen, rejected) and write verl "
                    f"RL rows to OUT_DIR/<split>.parquet: two rows per pair, the chosen text shown first and "
                    f"second, data_source {GENRM_DATA_SOURCE!r}, the prompt file's system and user messages as "
                    f"the prompt, and reward_model.ground_truth = {{'preferred': 'A' | 'B'}}. Pairs are shuffled "
                    f"(--seed) with each pair's two rows adjacent, so that training with data.shuffle=False and "
                    f"an even batch size sees both orders of a pair in the same step. "
                    f"scripts/train_genrm_rl.sh trains on them with writing_rl.genrm.reward.")
    genrm_rl.add_argument("input", type=Path, help="pairs folder or pairs file")
    genrm_rl.add_argument("--out-dir", type=Path, required=True, help="folder for the RL parquet files")
    genrm_rl.add_argument("--template", default="genrm",
                          help="GenRM prompt file (.toml) or built-in name; it must ask for \\boxed{a, b} scores "
                               "(default: genrm)")
    genrm_rl.add_argument("--seed", type=int, default=0,
                          help="seed of the pair order (default 0; the two orders of a pair always stay adjacent)")
    genrm_rl.set_defaults(handler=run_genrm_rl)


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
    add_pairs_command(commands)
    add_genrm_rl_command(commands)
    add_select_command(commands)
