"""`writing-rl judge try|eval`: talk to a judge before spending GPU time on it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from writing_rl.cli_options import add_judge_options, judge_settings_from_args
from writing_rl.judge.evaluation import evaluate_pairs, load_pairs, summarize
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.usage import UsageMeter


def add_judge_commands(subparsers: argparse._SubParsersAction) -> None:
    judge = subparsers.add_parser("judge", help="try or evaluate a judge endpoint",
                                  description="Try or evaluate a pairwise judge endpoint.")
    commands = judge.add_subparsers(dest="judge_command", required=True)

    try_cmd = commands.add_parser(
        "try", help="judge one pair and show the verdict, raw output, tokens and latency",
        description="Judge one pair (A first, B second) and show everything the judge returned.")
    try_cmd.add_argument("--prompt", required=True, help="the writing request")
    try_cmd.add_argument("--a", required=True, help="response A text, or @FILE to read it from a file")
    try_cmd.add_argument("--b", required=True, help="response B text, or @FILE")
    try_cmd.add_argument("--criteria", help="per-request criteria (uses --criteria-template)")
    _add_template_options(try_cmd)
    add_judge_options(try_cmd)
    try_cmd.set_defaults(handler=run_try)

    eval_cmd = commands.add_parser(
        "eval", help="accuracy and biases on preference pairs, both orders",
        description="Judge every pair in both orders and report accuracy (correct in both orders), "
                    "position consistency, first-position win rate, tie rate, parse and judge failures, "
                    "mean length of preferred vs rejected texts and tokens. Re-running with the same "
                    "--cache resumes for free.")
    eval_cmd.add_argument("--pairs", required=True, type=Path,
                          help="JSONL or parquet with fields prompt, chosen, rejected (optional id)")
    eval_cmd.add_argument("--out", type=Path, help="write one JSON line per pair here")
    eval_cmd.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    eval_cmd.add_argument("--limit", type=int, help="only the first N pairs")
    _add_template_options(eval_cmd)
    add_judge_options(eval_cmd)
    eval_cmd.set_defaults(handler=run_eval)


def _add_template_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", default="pairwise",
                        help="prompt file or built-in name: pairwise (default), genrm, pairwise_criteria")
    parser.add_argument("--criteria-template", default="pairwise_criteria",
                        help="prompt file used when criteria are given")


def _read_text(value: str) -> str:
    return Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value


def _make_judge(args: argparse.Namespace) -> PairwiseJudge:
    return PairwiseJudge.from_settings(judge_settings_from_args(args), args.template, args.criteria_template)


def run_try(args: argparse.Namespace) -> int:
    async def go() -> int:
        judge = _make_judge(args)
        try:
            result = await judge.compare(args.prompt, _read_text(args.a), _read_text(args.b),
                                         criteria=args.criteria)
        finally:
            await judge.aclose()
        if result.failed:
            print(f"judge failure: {result.error}", file=sys.stderr)
            return 2
        print("raw output:\n" + result.raw.rstrip() + "\n")
        verdict = result.verdict.name if result.verdict else "UNPARSEABLE (counts as a loss for the policy)"
        print(f"verdict:    {verdict}")
        if result.scores:
            print(f"scores:     A={result.scores[0]:g} B={result.scores[1]:g}")
        assert result.reply is not None
        print(f"tokens:     {result.reply.prompt_tokens} prompt + {result.reply.completion_tokens} completion")
        print(f"latency:    {result.reply.latency_s:.2f}s{' (cached)' if result.reply.cached else ''}")
        return 0

    return asyncio.run(go())


def run_eval(args: argparse.Namespace) -> int:
    pairs = load_pairs(args.pairs)[: args.limit]

    async def go() -> tuple[list, UsageMeter]:
        judge = _make_judge(args)
        try:
            return await evaluate_pairs(judge, pairs, progress=sys.stderr.isatty() or not args.json), \
                judge.client.usage
        finally:
            await judge.aclose()

    results, usage = asyncio.run(go())
    summary = summarize(results)
    summary["http_requests"] = usage.http_requests
    summary["latency_p50_s"] = round(usage.snapshot()["latency_p50_s"], 3)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", encoding="utf-8") as handle:
            for result in results:
                handle.write(json.dumps(result.as_record(), ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    return 0


def format_summary(summary: dict[str, float]) -> str:
    width = max(len(k) for k in summary)
    lines = ["judge evaluation (each pair judged in both orders)", "-" * (width + 12)]
    for key, value in summary.items():
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"{key.ljust(width)}  {text.rjust(9)}")
    return "\n".join(lines)
