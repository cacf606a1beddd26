"""`writing-rl data select`: margin-aware selection of training prompts, with reference ladders.

Every request goes through a cached client (one per endpoint, caches in OUT_DIR/cache), so the same
command resumes a stopped run for free. The first Ctrl-C stops sending and waits for the requests
already sent (their answers are paid for, so they are cached); a second one abandons them. Exit codes:
0 done, 1 nothing selected, 2 bad input or an unreachable endpoint, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any

from writing_rl.cli.options import (
    INTERRUPTED,
    NO_VERDICT,
    add_judge_options,
    add_template_options,
    judge_settings_from_args,
    load_templates,
    positive_int,
    usd_per_mtok,
)
from writing_rl.data.build import DEFAULT_SYSTEM_PROMPT
from writing_rl.data.rows import DataError
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import PromptTemplate
from writing_rl.selection.calls import StopGate
from writing_rl.selection.costs import usd_text
from writing_rl.selection.endpoints import Endpoints, load_endpoints
from writing_rl.selection.estimate import JudgePrices, estimate, format_estimate
from writing_rl.selection.generation import Writer
from writing_rl.selection.output import write_training_data
from writing_rl.selection.pair_judge import PairJudge
from writing_rl.selection.prompts import SelectionPrompt, load_prompts
from writing_rl.selection.reachability import check_reachable
from writing_rl.selection.report import build_report, summary_line, write_reports
from writing_rl.selection.select import Selection, SelectionInterrupted, Selector

JUDGE_WHERE = "the judge (--base-url / JUDGE_BASE_URL)"


def add_select_command(commands: argparse._SubParsersAction) -> None:
    select = commands.add_parser(
        "select", help="margin-aware selection: keep the prompts where the policy trails strong models most",
        description="Generate the policy's and K candidates' responses to every prompt, measure the margin "
                    "(the fraction of candidates that beat the policy in both presentation orders), rank the "
                    "candidates of the prompts with the largest margins round robin (both orders) into reference "
                    "ladders, weakest first, and write OUT_DIR/train.parquet (and test.parquet) through `data "
                    "build`, the experiment's index file, OUT_DIR/report.json, report.md and "
                    "margin_histogram.png. Prompts whose candidates cannot be ordered (ties, disagreeing orders, "
                    "cycles) are dropped. Requests are cached in OUT_DIR/cache: the same command resumes for free "
                    "after Ctrl-C (the first Ctrl-C waits for requests already sent; a second abandons them). "
                    "Exit codes: 0 done, 1 nothing selected, 2 bad input or unreachable endpoint, 130 interrupted.")
    select.add_argument("--prompts", type=Path, required=True,
                        help="JSONL, JSON array or parquet of rows {prompt, criteria?, id?}")
    select.add_argument("--endpoints", type=Path, required=True,
                        help="TOML with a [policy] table and [[candidates]] tables (see examples/endpoints.toml)")
    select.add_argument("--out-dir", type=Path, required=True, help="folder for the parquet files, reports, caches")
    select.add_argument("--top", type=positive_int, metavar="N", help="keep at most N prompts, largest margins first")
    select.add_argument("--min-margin", type=_margin, default=0.0, metavar="M",
                        help="keep only prompts with at least this margin (0..1; a margin of 0 is never kept)")
    select.add_argument("--dry-run", action="store_true",
                        help="estimate generations, judge calls, tokens and cost; send nothing")
    select.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    select.add_argument("--experiment", help="experiment name of the index file (default: the --out-dir name)")
    select.add_argument("--run-dir", type=Path, default=Path("running_file"),
                        help="folder of the index file index_<experiment>.json (default running_file)")
    select.add_argument("--test-size", type=int, default=0, help="selected prompts held out in test.parquet")
    select.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    select.add_argument("--system-prompt", default=DEFAULT_SYSTEM_PROMPT,
                        help="system message for generation and in the parquet rows")
    select.add_argument("--no-system-prompt", action="store_true", help="no system message")
    select.add_argument("--judge-usd-per-mtok-in", type=usd_per_mtok, metavar="USD",
                        help="judge price per million prompt tokens, for the cost report (default: unknown, and "
                             "costs that need it are shown as unknown, not as zero)")
    select.add_argument("--judge-usd-per-mtok-out", type=usd_per_mtok, metavar="USD",
                        help="judge price per million completion tokens, for the cost report (default: unknown)")
    add_template_options(select)
    add_judge_options(select)
    select.set_defaults(handler=run_select)


def _margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1 (a fraction of the candidates)")
    return value


@dataclasses.dataclass(frozen=True)
class SelectInputs:
    prompts: list[SelectionPrompt]
    endpoints: Endpoints
    judge: JudgeSettings
    templates: tuple[PromptTemplate, PromptTemplate | None]
    system_prompt: str | None


def _inputs(args: argparse.Namespace) -> SelectInputs:
    """Everything read and checked before a single request."""
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise DataError(f"--out-dir {args.out_dir}: is an existing file; give a folder (it is created if missing)")
    prompts = load_prompts(args.prompts)
    endpoints = load_endpoints(args.endpoints)
    cache_dir = args.out_dir / "cache"
    endpoints = Endpoints(endpoints.policy.with_default_cache(cache_dir),
                          tuple(c.with_default_cache(cache_dir) for c in endpoints.candidates))
    judge = judge_settings_from_args(args)
    if not judge.cache_path:
        judge = dataclasses.replace(judge, cache_path=str(cache_dir / "judge.sqlite"))
    return SelectInputs(prompts, endpoints, judge, load_templates(args),
                        None if args.no_system_prompt else args.system_prompt)


def run_select(args: argparse.Namespace) -> int:
    inputs = _inputs(args)
    prices = JudgePrices(args.judge_usd_per_mtok_in, args.judge_usd_per_mtok_out)
    if args.dry_run:
        summary = estimate(inputs.prompts, inputs.endpoints, inputs.judge, inputs.templates, prices,
                           system_prompt=inputs.system_prompt, top=args.top)
        print(json.dumps(summary) if args.json else format_estimate(summary))
        return 0
    gate = StopGate()
    writers = [Writer(endpoint, gate) for endpoint in inputs.endpoints.all]
    judge = PairJudge(PairwiseJudge(JudgeClient(inputs.judge, fail_fast_on_connect=True), *inputs.templates), gate)
    try:
        selection = asyncio.run(_select(args, inputs, writers, judge, gate))
    except SelectionInterrupted:
        generated = sum(w.counts.calls - w.counts.failed for w in writers)
        print(f"writing-rl: interrupted: {generated} generation(s) and {judge.counts.calls - judge.counts.failed} "
              f"judgement(s) answered so far are cached in {args.out_dir / 'cache'}; rerun the same command to "
              "resume without paying for them again", file=sys.stderr)
        return INTERRUPTED
    return _finish(args, inputs, selection, writers, judge, prices)


async def _select(args: argparse.Namespace, inputs: SelectInputs, writers: list[Writer], judge: PairJudge,
                  gate: StopGate) -> Selection:
    loop = asyncio.get_running_loop()

    def on_ctrl_c() -> None:
        if gate.closed:
            raise KeyboardInterrupt
        gate.close()
        print("\nwriting-rl: stopping: no new requests; waiting for those already sent so that their answers are "
              "cached (Ctrl-C again abandons them)", file=sys.stderr)

    loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
    try:
        await asyncio.gather(*(check_reachable(w.endpoint.where, w.client) for w in writers),
                             check_reachable(JUDGE_WHERE, judge.judge.client))
        selector = Selector(writers, judge, system_prompt=inputs.system_prompt,
                            progress=sys.stderr.isatty() or not args.json)
        return await selector.select(inputs.prompts, top=args.top, min_margin=args.min_margin)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        for closable in (*writers, judge):
            await closable.aclose()


def _finish(args: argparse.Namespace, inputs: SelectInputs, selection: Selection, writers: list[Writer],
            judge: PairJudge, prices: JudgePrices) -> int:
    settings: dict[str, Any] = {"prompts_file": str(args.prompts), "endpoints_file": str(args.endpoints),
                                "top": args.top, "min_margin": args.min_margin, "judge_model": inputs.judge.model,
                                "template": args.template}
    report = build_report(selection, [(w.endpoint, w.counts) for w in writers], judge.counts, judge.unparseable,
                          prices, settings)
    paths = write_reports(report, args.out_dir)
    summary = summary_line(report)
    messages = []
    if selection.selected:
        built, index_message = write_training_data(
            selection, args.out_dir, test_size=args.test_size, seed=args.seed, system_prompt=inputs.system_prompt,
            experiment=args.experiment or args.out_dir.resolve().name, run_dir=args.run_dir)
        messages += [f"wrote {path}: {count} rows" for path, count in built.written.items()] + [index_message]
    if args.json:
        print(json.dumps(summary))
    else:
        print(_format_summary(summary))
        for line in [*messages, f"report: {', '.join(str(p) for p in paths)}"]:
            print(line)
    if not selection.selected:
        print(f"writing-rl: error: no prompt was selected; {args.out_dir / 'report.json'} gives each prompt's reason "
              "under 'dropped'", file=sys.stderr)
        return NO_VERDICT
    return 0


def _format_summary(summary: dict[str, Any]) -> str:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(summary["drop_reasons"].items()))
    return "\n".join([
        f"selected {summary['selected']} of {summary['prompts']} prompts; dropped {summary['dropped']}"
        + (f" ({reasons})" if reasons else ""),
        f"generations: {summary['generations']} ({summary['generations_cached']} from the cache)",
        f"judge calls: {summary['judge_calls']} ({summary['judge_calls_cached']} from the cache); judging all pairs "
        f"would take {summary['judge_calls_all_pairs']}",
        f"cost: {usd_text(summary['usd'], 4)} for the whole selection, {usd_text(summary['paid_now_usd'], 4)} paid by "
        "this run"])
