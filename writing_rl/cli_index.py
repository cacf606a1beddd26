"""`writing-rl index create|show|diff`: the curriculum index file, for people."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from writing_rl.curriculum.index_file import (
    history_path,
    index_path,
    read_history,
    read_index,
    write_index,
)
from writing_rl.curriculum.ladders import ladder_lengths


def create_index(data: list[Path], experiment: str, run_dir: Path, force: bool = False) -> tuple[Path, str]:
    """A fresh index (every id at rung 0), or the existing one left as it is (a resumed run)."""
    path = index_path(run_dir, experiment)
    ladders = ladder_lengths(data)
    if path.exists() and not force:
        state = read_index(path)
        missing = sorted(set(ladders) - set(state))
        note = f"; {len(missing)} id(s) of the data are not in it and start at rung 0" if missing else ""
        return path, f"{path} already exists ({len(state)} ids); left unchanged to continue training{note}"
    write_index(path, dict.fromkeys(ladders, 0))
    return path, f"wrote {path}: {len(ladders)} ids at rung 0"


def run_create(args: argparse.Namespace) -> int:
    _, message = create_index(args.data, args.experiment, args.run_dir, args.force)
    print(message)
    return 0


def run_show(args: argparse.Namespace) -> int:
    state = read_index(args.file)
    history = read_history(history_path(args.file))
    histogram = Counter(state.values())
    mastered = {r["id"] for r in history if r.get("mastered")}
    print(f"{args.file}: {len(state)} prompts, mean rung {sum(state.values()) / max(1, len(state)):.2f}, "
          f"{len(mastered)} mastered (beat their top reference)")
    print("rung  prompts")
    for rung in sorted(histogram):
        print(f"{rung:>4}  {histogram[rung]:>7}  {'#' * min(60, histogram[rung])}")
    recent = history[-args.history:] if args.history else []
    if recent:
        print(f"last {len(recent)} promotion(s) (of {len(history)}):")
        for r in recent:
            tag = " mastered" if r.get("mastered") else ""
            print(f"  step {r['step']:>4}  {r['id']}: {r['from']} -> {r['to']}  ({r['wins']}/{r['n']} wins){tag}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    a, b = read_index(args.a), read_index(args.b)
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    for key in changed:
        print(f"{key}: {a[key]} -> {b[key]}")
    for key in sorted(set(b) - set(a)):
        print(f"{key}: added at {b[key]}")
    for key in sorted(set(a) - set(b)):
        print(f"{key}: removed (was {a[key]})")
    up = sum(b[k] > a[k] for k in changed)
    print(f"{len(changed)} changed ({up} up, {len(changed) - up} down), {len(set(b) - set(a))} added, "
          f"{len(set(a) - set(b))} removed")
    return 0


def add_index_commands(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="create, show or compare curriculum index files",
                                  description="The Writing-RL curriculum index: {\"<id>\": rung}.")
    commands = index.add_subparsers(dest="index_command", required=True)
    create = commands.add_parser("create", help="every id of the training data at rung 0",
                                 description="Create running_file/index_<experiment>.json from a train parquet. "
                                             "An existing file is left unchanged (resume) unless --force.")
    create.add_argument("--data", type=Path, nargs="+", required=True, help="train parquet file(s)")
    create.add_argument("--experiment", required=True)
    create.add_argument("--run-dir", type=Path, default=Path("running_file"))
    create.add_argument("--force", action="store_true", help="overwrite an existing index (all rungs to 0)")
    create.set_defaults(handler=run_create)
    show = commands.add_parser("show", help="rung histogram, mastered count, recent promotions")
    show.add_argument("file", type=Path)
    show.add_argument("--history", type=int, default=10, help="recent promotions to list")
    show.set_defaults(handler=run_show)
    diff = commands.add_parser("diff", help="what changed between two index files")
    diff.add_argument("a", type=Path)
    diff.add_argument("b", type=Path)
    diff.set_defaults(handler=run_diff)
