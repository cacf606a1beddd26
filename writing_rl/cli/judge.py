"""`writing-rl judge try|eval`: talk to a judge before spending GPU time on it.

Both commands fail fast when the judge cannot be connected to at all (a wrong URL costs one line,
not a minute of retries), exit 1 when the judge gave no usable verdict, and stop cleanly on
Ctrl-C with exit code 130.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from writing_rl.cli.judging import format_summary, run_interruptible, skip_identical_pairs
from writing_rl.cli.options import (
    INTERRUPTED,
    NO_VERDICT,
    add_judge_options,
    add_template_options,
    check_out_path,
    judge_settings_from_args,
    load_templates,
    positive_int,
)
from writing_rl.cli.probe import add_probe_command
from writing_rl.data.rows import DataError, read_rows
from writing_rl.judge.best_of_k import (
    CandidateSet,
    SetResult,
    collect_sets,
    drop_repeated_rejected,
    evaluate_sets,
    is_candidate_set_file,
    judge_calls,
    load_candidate_sets,
    split_degenerate,
    summarize_sets,
)
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.evaluation import (
    PairResult,
    evaluate_pairs,
    in_pair_order,
    load_pairs,
    summarize,
    usable_judgements,
)
from writing_rl.judge.pairwise import Comparison, PairwiseJudge
from writing_rl.judge.settings import JudgeSettings
from writing_rl.judge.summary_file import compare_summaries, read_summary_file, summary_record, write_summary_file
from writing_rl.judge.usage import UsageMeter
from writing_rl.prompts import PromptTemplate
from writing_rl.text_files import read_user_text

T = TypeVar("T")


def add_judge_commands(subparsers: argparse._SubParsersAction) -> None:
    judge = subparsers.add_parser("judge", help="try or evaluate a judge endpoint",
                                  description="Try or evaluate a pairwise judge endpoint.")
    commands = judge.add_subparsers(dest="judge_command", required=True)

    try_cmd = commands.add_parser(
        "try", help="judge one pair and show the verdict, raw output, tokens and latency",
        description="Judge one pair (A first, B second) and show everything the judge returned. "
                    "Exit code 1 when the judge failed or gave no parseable verdict.")
    try_cmd.add_argument("--prompt", required=True, help="the writing request")
    try_cmd.add_argument("--a", required=True,
                         help="response A text, or @FILE to read it from a UTF-8 file; "
                              "@@TEXT passes the literal text @TEXT")
    try_cmd.add_argument("--b", required=True, help="response B text, @FILE or @@TEXT (as --a)")
    try_cmd.add_argument("--criteria", help="per-request criteria (uses --criteria-template); not empty")
    add_template_options(try_cmd)
    add_judge_options(try_cmd)
    try_cmd.set_defaults(handler=run_try)

    eval_cmd = commands.add_parser(
        "eval", help="accuracy and biases on preference pairs (both orders), or best-of-k sets",
        description="Judge every pair in both orders and report accuracy (correct in both orders), "
                    "position consistency, first-position win rate, tie rate, parse and judge failures, "
                    "mean length of preferred vs rejected texts, length bias (how often the longer text "
                    "wins, against how often the longer text is the chosen one; length_bias is the "
                    "difference, > 0 when the judge favours length beyond the labels) and tokens paid "
                    "(cached judgements cost none). Pairs whose chosen and rejected texts are identical "
                    "are skipped and counted. "
                    "Best-of-k (RewardBench 2 style): when every row's 'rejected' is an array, each row is a "
                    "set of one chosen and k-1 rejected answers; every candidate is judged against every "
                    "other in both orders (k(k-1) judgements per set), a judgement gives its winner 1 point "
                    "(0.5 each on a tie), and the set is solved when the chosen answer alone has the most "
                    "points; accuracy, tie rate (chosen shares the top) and the random baseline (mean 1/k) "
                    "are reported; a rejected answer repeated within a set is judged once (the copies are "
                    "dropped and counted), and the number of judge calls is printed before judging. "
                    "Re-running with the same --cache resumes for free, also after Ctrl-C (which writes "
                    "the summary and --out lines of what was judged so far and exits 130). Exit code 1 "
                    "when no judgement gave a verdict.")
    eval_cmd.add_argument("--pairs", required=True, type=Path,
                          help="JSONL, JSON array or parquet: pairs {id?, prompt, chosen, rejected} or "
                               "best-of-k sets {id?, prompt, chosen, rejected: [text, ...]}")
    eval_cmd.add_argument("--out", type=Path,
                          help="write one JSON line per pair (or set) here (checked before judging; never the "
                               "--pairs or --cache file)")
    eval_cmd.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    eval_cmd.add_argument("--summary-json", type=Path,
                          help="also write the summary to this file with what it was measured on (input "
                               "file and its sha256, judge model and settings, template, time, complete or "
                               "interrupted), so that two runs can be compared")
    eval_cmd.add_argument("--limit", type=positive_int, help="only the first N pairs or sets (N >= 1)")
    add_template_options(eval_cmd)
    add_judge_options(eval_cmd)
    eval_cmd.set_defaults(handler=run_eval)

    compare_cmd = commands.add_parser(
        "compare", help="compare two --summary-json files of judge eval, metric by metric",
        description="Print every metric of two `judge eval --summary-json` files side by side with the "
                    "difference (new - base), and what else differs: the input file (sha256, --limit), the "
                    "judge settings and prompt file, an interrupted run. A warning lists the metrics left out: "
                    "present in only one file, or not numbers. Summaries of different kinds (pairs vs "
                    "best-of-k), or without a numeric metric in common, are refused (exit code 2). Sends "
                    "nothing.")
    compare_cmd.add_argument("base", type=Path, help="the summary to compare against")
    compare_cmd.add_argument("new", type=Path, help="the summary of the run to judge by")
    compare_cmd.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    compare_cmd.set_defaults(handler=run_compare)

    add_probe_command(commands)



def read_argument_text(value: str, option: str) -> str:
    """`@FILE` -> the file's text, `@@TEXT` -> the literal `@TEXT`, anything else as given."""
    if value.startswith("@@"):
        return value[1:]
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    if not path.exists():
        raise DataError(f"{option} {value}: no file {str(path)!r}; to pass text that starts with @, "
                        f"double it: {option} '@{value}'")
    return read_user_text(path, DataError)



def _make_judge(settings: JudgeSettings, templates: tuple[PromptTemplate, PromptTemplate | None]
                ) -> PairwiseJudge:
    return PairwiseJudge(JudgeClient(settings, fail_fast_on_connect=True), *templates)


def _check_try_criteria(args: argparse.Namespace, template: PromptTemplate) -> None:
    if args.criteria is not None and not args.criteria.strip():
        raise DataError("--criteria is empty; give the criteria text, or leave --criteria out")
    if args.criteria is None and template.uses_criteria:
        raise DataError(f"--template {template.path}: has a {{criteria}} placeholder; pass --criteria TEXT "
                        "(it would be rendered empty)")


def run_try(args: argparse.Namespace) -> int:
    settings = judge_settings_from_args(args)
    text_a, text_b = read_argument_text(args.a, "--a"), read_argument_text(args.b, "--b")
    templates = load_templates(args)
    _check_try_criteria(args, templates[0])

    async def go() -> Comparison:
        judge = _make_judge(settings, templates)
        try:
            return await judge.compare(args.prompt, text_a, text_b, criteria=args.criteria)
        finally:
            await judge.aclose()

    try:
        result = asyncio.run(go())
    except KeyboardInterrupt:
        print("writing-rl: interrupted before the judge answered", file=sys.stderr)
        return INTERRUPTED
    return _print_try_result(result)


def _print_try_result(result: Comparison) -> int:
    if result.failed:
        print(f"judge failure: {result.error}", file=sys.stderr)
        return NO_VERDICT
    print("raw output:\n" + result.raw.rstrip() + "\n")
    verdict = result.verdict.name if result.verdict else "UNPARSEABLE (counts as a loss for the policy)"
    print(f"verdict:    {verdict}")
    if result.scores:
        print(f"scores:     A={result.scores[0]:g} B={result.scores[1]:g}")
    assert result.reply is not None
    print(f"tokens:     {result.reply.prompt_tokens} prompt + {result.reply.completion_tokens} completion")
    print(f"latency:    {result.reply.latency_s:.2f}s{' (cached)' if result.reply.cached else ''}")
    return 0 if result.verdict else NO_VERDICT




def _write_out(path: Path, results: Sequence[PairResult | SetResult]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for result in results:
                handle.write(json.dumps(result.as_record(), ensure_ascii=False) + "\n")
    except OSError as exc:
        raise DataError(f"--out {path}: cannot write ({exc.strerror}); the summary above is complete") from exc



def run_eval(args: argparse.Namespace) -> int:
    settings = judge_settings_from_args(args)
    for option, path in (("--out", args.out), ("--summary-json", args.summary_json)):
        if path:
            check_out_path(path, args.pairs, settings.cache_path, option)
    if args.out and args.summary_json and args.out.resolve() == args.summary_json.resolve():
        raise DataError(f"--summary-json {args.summary_json}: is also the --out file; give two different files")
    rows = read_rows(args.pairs)
    if is_candidate_set_file(args.pairs, rows):
        return _run_best_of_k(args, settings, rows)
    pairs, skipped = skip_identical_pairs(args.pairs, load_pairs(args.pairs, rows)[: args.limit])
    judge = _make_judge(settings, load_templates(args))
    progress = sys.stderr.isatty() or not args.json
    results, finished = run_interruptible(
        judge, lambda finished: evaluate_pairs(judge, pairs, progress=progress, finished=finished))
    interrupted = results is None
    if results is None:
        results = in_pair_order(finished, pairs)
    summary = summarize(results)
    summary["skipped_identical_pairs"] = skipped
    _report(args, settings, "pairs", summary, results, judge.client.usage, complete=not interrupted)
    if interrupted:
        _print_interrupted(args.out, settings.cache_path, len(results), len(pairs), "pair")
        return INTERRUPTED
    return _exit_code(results)


def _drop_repeated_rejected(path: Path, sets: Sequence[CandidateSet]) -> tuple[list[CandidateSet], int]:
    """The sets with each rejected answer once, and how many copies were dropped (with a warning)."""
    sets, repeated = drop_repeated_rejected(sets)
    if repeated:
        shown = ", ".join(f"{set_id} ({n})" for set_id, n in list(repeated.items())[:10])
        print(f"writing-rl: warning: {path}: dropped {sum(repeated.values())} repeated rejected answer(s) in "
              f"{len(repeated)} set(s), ids (copies): {shown}{' ...' if len(repeated) > 10 else ''}; a copy would be "
              "judged against itself and count as another candidate; remove the copies from the file to silence "
              "this", file=sys.stderr)
    return sets, sum(repeated.values())


def _run_best_of_k(args: argparse.Namespace, settings: JudgeSettings, rows: Sequence[dict[str, Any]]) -> int:
    sets, degenerate = split_degenerate(load_candidate_sets(args.pairs, rows)[: args.limit])
    if degenerate:
        ids = [s.id for s in degenerate]
        print(f"writing-rl: warning: skipped {len(ids)} set(s) whose chosen answer is also among the rejected ones "
              f"(they measure nothing): ids {ids[:10]}{' ...' if len(ids) > 10 else ''}", file=sys.stderr)
    if not sets:
        raise DataError(f"{args.pairs}: no set left to judge (every chosen answer is also a rejected one)")
    sets, repeated = _drop_repeated_rejected(args.pairs, sets)
    print(f"writing-rl: best-of-k: {len(sets)} set(s) cost {judge_calls(sets)} judge call(s) (k(k-1) per set of k "
          "candidates; judgements already in --cache cost nothing)", file=sys.stderr)
    judge = _make_judge(settings, load_templates(args))
    progress = sys.stderr.isatty() or not args.json
    results, finished = run_interruptible(
        judge, lambda finished: evaluate_sets(judge, sets, progress=progress, finished=finished))
    interrupted = results is None
    if results is None:
        results = collect_sets(sets, finished)
    summary = summarize_sets(results)
    summary["skipped_degenerate_sets"] = len(degenerate)
    summary["dropped_repeated_rejected"] = repeated
    _report(args, settings, "best_of_k", summary, results, judge.client.usage, complete=not interrupted)
    if interrupted:
        _print_interrupted(args.out, settings.cache_path, len(results), len(sets), "set")
        return INTERRUPTED
    return _exit_code([m for r in results for _, _, m in r.matches])


def run_compare(args: argparse.Namespace) -> int:
    comparison = compare_summaries(read_summary_file(args.base), read_summary_file(args.new),
                                   base_name=str(args.base), new_name=str(args.new))
    skipped = comparison.skipped_note(str(args.base), str(args.new))
    if skipped:
        print(f"writing-rl: warning: metrics not compared ({skipped}); were both files written by the same "
              "writing-rl version and command?", file=sys.stderr)
    if args.json:
        print(json.dumps(comparison.as_record()))
        return 0
    if not comparison.same_input:
        print("writing-rl: warning: the two runs measured different inputs (sha256 or --limit differ); the "
              "deltas compare different data", file=sys.stderr)
    lines = [f"base: {args.base}", f"new:  {args.new}"]
    lines += [f"differs: {key}: {base!r} -> {new!r}" for key, (base, new) in comparison.differences.items()]
    width = max([len(k) for k in comparison.metrics] + [6])
    lines.append(f"{'metric'.ljust(width)}  {'base':>10}  {'new':>10}  {'delta':>10}")
    for key, (base, new, delta) in comparison.metrics.items():
        lines.append(f"{key.ljust(width)}  {base:>10.4g}  {new:>10.4g}  {delta:>+10.4g}")
    print("\n".join(lines))
    return 0


def _exit_code(results: Sequence[PairResult]) -> int:
    if not usable_judgements(results):
        print("writing-rl: error: no judgement gave a verdict (see judge_failures and parse_failures); check "
              "the judge settings, -v shows each error", file=sys.stderr)
        return NO_VERDICT
    return 0


def _report(args: argparse.Namespace, settings: JudgeSettings, kind: str, summary: dict[str, Any],
            results: Sequence[PairResult | SetResult], usage: UsageMeter, *, complete: bool) -> None:
    summary["http_requests"] = usage.http_requests
    summary["latency_p50_s"] = round(usage.snapshot()["latency_p50_s"], 3)
    title = ("best-of-k evaluation (every candidate against every other, both orders)" if kind == "best_of_k"
             else "judge evaluation (each pair judged in both orders)")
    print(json.dumps(summary) if args.json else format_summary(summary, title), flush=True)
    if args.out:
        _write_out(args.out, results)
    if args.summary_json:
        write_summary_file(args.summary_json, summary_record(
            kind, summary, input_path=args.pairs, limit=args.limit, settings=settings, template=args.template,
            complete=complete))


def _print_interrupted(out: Path | None, cache_path: str | None, done: int, total: int, unit: str) -> None:
    kept = f"; their results are in {out}" if out else ""
    resume = ("rerun with the same --cache to resume without paying twice" if cache_path
              else "pass --cache FILE next time to make a rerun resume without paying twice")
    print(f"writing-rl: interrupted: {done} of {total} {unit}(s) judged, the summary covers those{kept}; {resume}",
          file=sys.stderr)
