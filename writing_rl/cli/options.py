"""What the sub-commands share: exit codes, judge endpoint and prompt-file options, and the check that an output
file may be written."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from writing_rl.data.rows import DataError
from writing_rl.judge.settings import OUTPUT_CONSTRAINTS, JudgeSettings
from writing_rl.prompts import PromptTemplate, load_template


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def usd_per_mtok(text: str) -> float:
    """An argparse type: a price in US dollars per million tokens (finite, >= 0)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give a price in US dollars per million "
                                         "tokens, e.g. 3 or 0.15")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0 (US dollars per million tokens)")
    return value


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "judge endpoint", "each option falls back to the environment variable JUDGE_<NAME>, then to a default")
    group.add_argument("--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    group.add_argument("--model", help="model name the endpoint serves")
    group.add_argument("--api-key-env", help="NAME of the environment variable holding the API key "
                       "(default JUDGE_API_KEY); the key itself is never printed or stored")
    group.add_argument("--temperature", type=float)
    group.add_argument("--max-tokens", type=int, help="judge output budget per call")
    group.add_argument("--timeout", dest="timeout_s", type=float, help="seconds per request")
    group.add_argument("--max-concurrency", type=int, help="judge requests in flight at most")
    group.add_argument("--rpm", dest="requests_per_minute", type=float, help="requests per minute (0 = no limit)")
    group.add_argument("--tpm", dest="tokens_per_minute", type=float, help="tokens per minute (0 = no limit)")
    group.add_argument("--retries", dest="max_retries", type=int, help="retries on transient errors")
    group.add_argument("--cache", dest="cache_path", help="SQLite cache file; re-runs are free")
    group.add_argument("--output-constraint", choices=OUTPUT_CONSTRAINTS,
                       help="send the prompt file's grammar to force the output format")


def judge_settings_from_args(args: argparse.Namespace) -> JudgeSettings:
    overrides = {name: getattr(args, name, None) for name in JudgeSettings.field_names()}
    return JudgeSettings.from_env(overrides)


INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""
NO_VERDICT = 1


def add_template_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", default="pairwise",
                        help="prompt file or built-in name: pairwise (default), genrm, pairwise_criteria; "
                             "in a prompt file, {{ and }} are literal braces")
    parser.add_argument("--criteria-template", default="pairwise_criteria",
                        help="prompt file used when criteria are given")


def load_templates(args: argparse.Namespace) -> tuple[PromptTemplate, PromptTemplate | None]:
    template = load_template(args.template)
    criteria_template = load_template(args.criteria_template) if args.criteria_template else None
    return template, criteria_template


def check_out_path(out: Path, pairs: Path, cache: str | None, option: str = "--out") -> None:
    """Before any judging: an output must be a writable file that is neither the input nor the cache."""
    target = out.resolve()
    if target == pairs.resolve():
        raise DataError(f"{option} {out}: is the --pairs file, which the results would replace; give another file")
    if cache and target == Path(cache).resolve():
        raise DataError(f"{option} {out}: is the --cache file, which the results would replace; give another file")
    if out.is_dir():
        raise DataError(f"{option} {out}: is a directory; give a file name, e.g. {out / 'results.jsonl'}")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise DataError(f"{option} {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise DataError(f"{option} {out}: not writable (permission denied); give a file in a folder you can write")
