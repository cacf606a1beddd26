"""Command-line options shared by sub-commands: judge endpoint settings."""

from __future__ import annotations

import argparse
import math

from writing_rl.judge.settings import OUTPUT_CONSTRAINTS, JudgeSettings


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
