"""`writing-rl index create|show|diff|set`: the curriculum index file, for people."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from writing_rl.curriculum.edit_queue import EditQueue, QueuedEdit
from writing_rl.curriculum.edits import printable_id
from writing_rl.curriculum.index_creation import create_index
from writing_rl.curriculum.index_file import (
    IndexFileError,
    history_path,
    index_path,
    parse_index,
    read_index,
    scan_history,
)
from writing_rl.curriculum.ladders import ladder_lengths
from writing_rl.curriculum.swap import read_quietly

WHEN_EDITS_APPLY = ("training applies queued edits before its next judgement or index write (within about a "
                    "second while it runs; at its next start otherwise)")


def run_create(args: argparse.Namespace) -> int:
    _, message = create_index(args.data, args.experiment, args.run_dir, args.force)
    print(message)
    return 0


def run_show(args: argparse.Namespace) -> int:
    state = read_index(args.file)
    history = scan_history(history_path(args.file))
    queued = EditQueue(args.file).read()
    for problem in history.problems + queued.problems:
        print(f"warning: {problem}", file=sys.stderr)
    histogram = Counter(state.values())
    mastered = {r["id"] for r in history.records if r.get("mastered")}
    print(f"{args.file}: {len(state)} prompts, mean rung {sum(state.values()) / max(1, len(state)):.2f}, "
          f"{len(mastered)} mastered (beat their top reference)")
    print("rung  prompts")
    for rung in sorted(histogram):
        print(f"{rung:>4}  {histogram[rung]:>7}  {'#' * min(60, histogram[rung])}")
    recent = history.records[-args.history:] if args.history else []
    if recent:
        print(f"last {len(recent)} promotion(s) (of {len(history.records)}):")
        for r in recent:
            tag = " mastered" if r.get("mastered") else ""
            print(f"  step {r['step']:>4}  {printable_id(r['id'])}: {r['from']} -> {r['to']}  "
                  f"({r.get('wins', '?')}/{r.get('n', '?')} wins){tag}")
    if queued.edits:
        print(f"{len(queued.edits)} edit(s) queued by `index set`, not applied yet ({WHEN_EDITS_APPLY}):")
        for edit in queued.edits:
            print(f"  {printable_id(edit.id)}: {edit.seen} -> {edit.rung}{'  --force' if edit.force else ''}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    a, b = read_index(args.a), read_index(args.b)
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    for key in changed:
        print(f"{printable_id(key)}: {a[key]} -> {b[key]}")
    for key in sorted(set(b) - set(a)):
        print(f"{printable_id(key)}: added at {b[key]}")
    for key in sorted(set(a) - set(b)):
        print(f"{printable_id(key)}: removed (was {a[key]})")
    up = sum(b[k] > a[k] for k in changed)
    print(f"{len(changed)} changed ({up} up, {len(changed) - up} down), {len(set(b) - set(a))} added, "
          f"{len(set(a) - set(b))} removed")
    return 0


def _parse_assignment(item: str) -> tuple[str, int]:
    key, sep, value = item.rpartition("=")  # the last `=`: an id may contain one, a rung never does
    if not sep:
        raise IndexFileError(f"{item!r}: expected ID=RUNG")
    if not (value.isascii() and value.isdigit()):
        raise IndexFileError(f"{item!r}: the rung must be a non-negative integer")
    return key, int(value)


def queue_edits(path: Path, items: list[str], force: bool, data: list[Path] | None) -> list[QueuedEdit]:
    """Check every ID=RUNG (ids against the index, rungs against the data's ladders when given, no demotion
    without `force`), then queue them all, or none."""
    if path.is_dir():
        raise IndexFileError(f"{path} is a directory; give the index file (index_<experiment>.json)")
    try:
        state = parse_index(read_quietly(path), path)  # quietly: reading here is not loading it in an editor
    except FileNotFoundError as exc:
        raise IndexFileError(f"{path}: not found; create it with `writing-rl index create`") from exc
    ladders = ladder_lengths(data) if data else None
    queued = EditQueue(path).pending()
    edits = []
    for item in items:
        key, rung = _parse_assignment(item)
        if ladders is not None and key not in ladders:
            raise IndexFileError(f"{printable_id(key)}: not an id of the training data")
        if key not in state:
            raise IndexFileError(f"{printable_id(key)}: not in {path} (`writing-rl index create` adds the ids of "
                                 "the data)")
        if ladders is not None and rung >= ladders[key]:
            raise IndexFileError(f"{printable_id(key)}={rung}: beyond its {ladders[key]} reference(s) "
                                 f"(valid: 0..{ladders[key] - 1})")
        if rung < state[key] and not force:
            raise IndexFileError(f"{printable_id(key)}: {state[key]} -> {rung} is a demotion; add --force")
        # a rung queued earlier and not applied yet is what this person last asked for: the new edit replaces it
        edits.append(QueuedEdit(key, rung, force, queued.get(key, state[key]), replaces=queued.get(key)))
    EditQueue(path).append(edits)
    return edits


def run_set(args: argparse.Namespace) -> int:
    path = args.file or index_path(args.run_dir, args.experiment)
    edits = queue_edits(path, args.edits, args.force, args.data)
    print(f"queued {len(edits)} edit(s) in {EditQueue(path).path}: "
          + ", ".join(f"{printable_id(e.id)} {e.seen} -> {e.rung}"
                      + (f" (replaces the queued {e.replaces})" if e.replaces is not None else "")
                      for e in edits[:10])
          + (" ..." if len(edits) > 10 else ""))
    print(f"{WHEN_EDITS_APPLY}; `writing-rl index show {path}` lists what is still queued")
    return 0


def add_index_commands(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="create, show, compare or edit curriculum index files",
                                  description="The Writing-RL curriculum index: {\"<id>\": rung}.")
    commands = index.add_subparsers(dest="index_command", required=True)
    create = commands.add_parser("create", help="every id of the training data at rung 0",
                                 description="Create running_file/index_<experiment>.json from a train parquet. "
                                             "An existing file keeps every rung (resume) and gains the ids of the "
                                             "data it lacks, at rung 0; --force resets it.")
    create.add_argument("--data", type=Path, nargs="+", required=True, help="train parquet file(s)")
    create.add_argument("--experiment", required=True)
    create.add_argument("--run-dir", type=Path, default=Path("running_file"))
    create.add_argument("--force", action="store_true", help="overwrite an existing index (all rungs to 0)")
    create.set_defaults(handler=run_create)
    show = commands.add_parser("show", help="rung histogram, mastered count, recent promotions, queued edits")
    show.add_argument("file", type=Path)
    show.add_argument("--history", type=int, default=10, help="recent promotions to list")
    show.set_defaults(handler=run_show)
    diff = commands.add_parser("diff", help="what changed between two index files")
    diff.add_argument("a", type=Path)
    diff.add_argument("b", type=Path)
    diff.set_defaults(handler=run_diff)
    edit = commands.add_parser(
        "set", help="queue rung changes; safe while training runs",
        description=f"Queue ID=RUNG edits in index_<experiment>.edits.jsonl; {WHEN_EDITS_APPLY}. A demotion, or "
                    "undoing a promotion training made after you ran this, needs --force.")
    edit.add_argument("edits", nargs="+", metavar="ID=RUNG")
    where = edit.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", type=Path, help="the index file")
    where.add_argument("--experiment", help="the experiment (with --run-dir)")
    edit.add_argument("--run-dir", type=Path, default=Path("running_file"))
    edit.add_argument("--data", type=Path, nargs="+", help="train parquet file(s): check ids and rungs against "
                                                           "their ladders")
    edit.add_argument("--force", action="store_true",
                      help="allow a demotion, and override training's promotions made meanwhile")
    edit.set_defaults(handler=run_set)
