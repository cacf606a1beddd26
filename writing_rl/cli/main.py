"""The `writing-rl` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from writing_rl import __version__
from writing_rl.cli.data import add_data_commands
from writing_rl.cli.doctor import add_doctor_command
from writing_rl.cli.eval import add_eval_commands
from writing_rl.cli.genrm import add_genrm_commands
from writing_rl.cli.index import add_index_commands
from writing_rl.cli.judge import add_judge_commands
from writing_rl.cli.model import add_model_commands
from writing_rl.cli.options import INTERRUPTED
from writing_rl.cli.preflight import add_preflight_command
from writing_rl.cli.rehearse import add_rehearse_command
from writing_rl.curriculum.index_file import IndexFileError
from writing_rl.data.rows import DataError
from writing_rl.judge.errors import JudgeError
from writing_rl.prompts import TemplateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="writing-rl",
        description="Reinforcement learning for writing on verl with pairwise LLM-judge rewards.")
    parser.add_argument("--version", action="version", version=f"writing-rl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log judge retries and details")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_judge_commands(subparsers)
    add_genrm_commands(subparsers)
    add_eval_commands(subparsers)
    add_data_commands(subparsers)
    add_index_commands(subparsers)
    add_doctor_command(subparsers)
    add_preflight_command(subparsers)
    add_rehearse_command(subparsers)
    add_model_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # Hydra overrides may follow a command's options: `rehearse SCRIPT --steps 3 data.x=1`
        if not hasattr(args, "overrides") or any(u.startswith("-") or "=" not in u for u in unknown):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.overrides = [*args.overrides, *unknown]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except (DataError, TemplateError, JudgeError, IndexFileError, ValueError) as exc:
        print(f"writing-rl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("writing-rl: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        return _output_closed()


OUTPUT_CLOSED = 141
"""The status a shell gives a command stopped by SIGPIPE (128 + 13), as `yes | head -1` shows."""


def _output_closed() -> int:
    """Whoever read our output went away (`| head -1`, `| true`): stop quietly, without a traceback, as a shell's
    tools do. What the command wrote to files is complete; only its printing stopped. stdout now points at
    /dev/null, so that Python's own flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return OUTPUT_CLOSED

