"""`writing-rl eval policy`: did training help? The policy's responses against a baseline's, judged in both
orders, with a bootstrap interval, a length-controlled win rate, per-criterion scores and an HTML report.

Exit codes: 0 done; 1 no pair got a usable verdict; 2 bad input or settings; 130 Ctrl-C (the outputs then
cover what was judged; rerun with the same caches to resume without paying twice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from writing_rl.cli.options import INTERRUPTED, NO_VERDICT, add_judge_options, judge_settings_from_args, positive_int
from writing_rl.data.rows import DataError
from writing_rl.evaluation.criteria import CriteriaScorer
from writing_rl.evaluation.generation import generate_responses
from writing_rl.evaluation.inputs import EvalPrompt, check_coverage, load_prompts, load_responses
from writing_rl.evaluation.outcomes import prompt_records, summarize_policy
from writing_rl.evaluation.policy_eval import SIDES, PolicyEvaluation
from writing_rl.evaluation.report import render_report
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import load_template

SUMMARY_FILE, PER_PROMPT_FILE, REPORT_FILE = "summary.json", "per_prompt.jsonl", "report.html"


def add_eval_commands(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser("eval", help="evaluate a trained policy against a baseline",
                                     description="Evaluate a trained policy with the judge.")
    commands = evaluate.add_subparsers(dest="eval_command", required=True)
    policy = commands.add_parser(
        "policy", help="win rate of the policy vs a baseline, with error bars and an HTML report",
        description="Judge the policy's response to every prompt against the baseline's, in both orders (a win "
                    "must hold in both; ties and flips count half), with a 95% bootstrap interval over prompts, a "
                    "length-controlled win rate (logistic regression of the outcome on the log length ratio, read "
                    "at equal length) and, for rows with criteria, each criterion scored 1-10 by a critic prompt. "
                    f"Writes {SUMMARY_FILE}, {PER_PROMPT_FILE} and a self-contained {REPORT_FILE} into --out-dir. "
                    "Responses come from files or are generated from OpenAI-compatible endpoints (cached). Exit "
                    "code 1 when no pair got a usable verdict, 130 on Ctrl-C (outputs cover what was judged).")
    policy.add_argument("--prompts", required=True, type=Path,
                        help="our verl parquet (writing-rl data build), or JSONL/JSON/parquet rows {id, prompt, "
                             "criteria?}; criteria: one criterion per line")
    for side in SIDES:
        source = policy.add_mutually_exclusive_group(required=True)
        source.add_argument(f"--{side}", type=Path,
                            help=f"the {side}'s responses: JSONL rows {{id, response}} (response: a string or a list "
                                 "of samples), or the parquet verl's main_generation_server writes (column "
                                 "`responses`, n samples per row)")
        source.add_argument(f"--{side}-base-url",
                            help=f"generate the {side}'s responses from this OpenAI-compatible endpoint instead")
        policy.add_argument(f"--{side}-model", help=f"model name served at --{side}-base-url")
        policy.add_argument(f"--{side}-api-key-env", default="JUDGE_API_KEY",
                            help=f"NAME of the variable holding --{side}-base-url's key (the key is never shown)")
    generation = policy.add_argument_group("generation (only with --policy-base-url / --baseline-base-url)")
    generation.add_argument("--samples", type=positive_int, default=1, help="responses per prompt (default 1)")
    generation.add_argument("--gen-max-tokens", type=positive_int, default=2048, help="default 2048")
    generation.add_argument("--gen-temperature", type=float, default=0.7, help="default 0.7")
    generation.add_argument("--gen-cache", type=Path,
                            help="SQLite cache for generated texts (default OUT_DIR/generation_cache.sqlite)")
    policy.add_argument("--out-dir", required=True, type=Path, help="folder for the summary, rows and report")
    policy.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    policy.add_argument("--limit", type=positive_int, help="only the first N prompts")
    policy.add_argument("--template", default="pairwise", help="pairwise prompt file or built-in name (verdict or "
                        "scores output; default pairwise)")
    policy.add_argument("--critic-template", default="criteria_score",
                        help="per-criterion critic prompt file (output = \"score\"; default criteria_score)")
    policy.add_argument("--no-criteria", action="store_true", help="skip per-criterion scores")
    policy.add_argument("--bootstrap", type=positive_int, default=2000, help="bootstrap resamples (default 2000)")
    policy.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    add_judge_options(policy)
    policy.set_defaults(handler=run_policy_eval)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out-dir {out_dir}: is a file; give a folder (it is created if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)


def _generation_settings(args: argparse.Namespace, side: str) -> JudgeSettings:
    model = getattr(args, f"{side}_model")
    if not model:
        raise DataError(f"--{side}-base-url needs --{side}-model (the model name the endpoint serves)")
    cache = args.gen_cache or args.out_dir / "generation_cache.sqlite"
    try:
        return JudgeSettings(base_url=getattr(args, f"{side}_base_url"), model=model,
                             api_key_env=getattr(args, f"{side}_api_key_env"), temperature=args.gen_temperature,
                             max_tokens=args.gen_max_tokens, cache_path=str(cache))
    except ValueError as exc:  # the settings speak of a judge's fields; name this command's options instead
        text = str(exc).removeprefix("invalid judge settings: ")
        for field_name, option in (("base_url", f"--{side}-base-url"), ("api_key_env", f"--{side}-api-key-env"),
                                   ("max_tokens", "--gen-max-tokens"), ("temperature", "--gen-temperature")):
            text = re.sub(rf"\b{field_name}\b", option, text)
        raise DataError(f"generating the {side}'s responses: {text}") from exc


def _responses(args: argparse.Namespace, side: str, prompts: list[EvalPrompt], progress: bool
               ) -> dict[str, list[str]]:
    path = getattr(args, side)
    if path is not None:
        responses = load_responses(path, side)
        check_coverage(prompts, responses, side, str(path))
        return responses
    settings = _generation_settings(args, side)
    responses = asyncio.run(generate_responses(settings, prompts, side, samples=args.samples, progress=progress))
    with (args.out_dir / f"{side}_responses.jsonl").open("w", encoding="utf-8") as handle:
        for prompt in prompts:
            handle.write(json.dumps({"id": prompt.id, "response": responses[prompt.id]}, ensure_ascii=False) + "\n")
    return responses


def _criteria_scorer(args: argparse.Namespace, settings: JudgeSettings, prompts: list[EvalPrompt]
                     ) -> CriteriaScorer | None:
    if args.no_criteria or not any(p.criteria for p in prompts):
        return None
    return CriteriaScorer(JudgeClient(settings, fail_fast_on_connect=True),
                          load_template(args.critic_template, expect_output="score"))


def run_policy_eval(args: argparse.Namespace) -> int:
    settings = judge_settings_from_args(args)
    template = load_template(args.template)
    if template.output == "score":
        raise DataError(f"--template {template.path}: a single-response score file; give a pairwise prompt file")
    _check_out_dir(args.out_dir)
    prompts = load_prompts(args.prompts)[: args.limit]
    progress = sys.stderr.isatty() or not args.json
    try:
        policy = _responses(args, "policy", prompts, progress)
        baseline = _responses(args, "baseline", prompts, progress)
    except KeyboardInterrupt:
        print("writing-rl: interrupted while generating; rerun with the same --gen-cache to resume for free",
              file=sys.stderr)
        return INTERRUPTED
    critic = _criteria_scorer(args, settings, prompts)
    judge = PairwiseJudge(JudgeClient(settings, fail_fast_on_connect=True), template)
    evaluation = PolicyEvaluation(judge, critic, prompts, policy, baseline)

    async def go() -> None:
        try:
            await evaluation.run(progress=progress)
        finally:
            await judge.aclose()
            if critic is not None:
                await critic.client.aclose()

    try:
        asyncio.run(go())
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    summary = _write_outputs(args, evaluation, complete=not interrupted)
    print(json.dumps(summary) if args.json else _format(summary), flush=True)
    for warning in summary["warnings"]:
        print(f"writing-rl: warning: {warning}", file=sys.stderr)
    if interrupted:
        resume = ("rerun with the same --cache to resume without paying twice" if settings.cache_path else
                  "this run had no --cache, so a rerun pays for every judgement again (give --cache next time)")
        total = len(evaluation.pairs) + len(evaluation.unjudgeable)
        print(f"writing-rl: interrupted: {summary['pairs']} of {total} pair(s) judged; the outputs in {args.out_dir} "
              f"cover those and say complete: false; {resume}", file=sys.stderr)
        return INTERRUPTED
    if not summary["usable_pairs"]:
        print("writing-rl: error: no pair got a parsed verdict in both orders (see judge_failures and "
              "parse_failures); check the judge settings, -v shows each error", file=sys.stderr)
        return NO_VERDICT
    return 0


def _write_outputs(args: argparse.Namespace, evaluation: PolicyEvaluation, *, complete: bool) -> dict[str, Any]:
    pairs = evaluation.judged_pairs()
    records = prompt_records(pairs, evaluation.criteria_scores)
    summary = summarize_policy(pairs, evaluation.criteria_scores, resamples=args.bootstrap, seed=args.seed,
                               complete=complete)
    clients = [evaluation.judge.client] + ([evaluation.critic.client] if evaluation.critic else [])
    summary["http_requests"] = sum(c.usage.http_requests for c in clients)
    summary["cached_judgements"] = sum(c.usage.cache_hits for c in clients)
    out = args.out_dir
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with (out / PER_PROMPT_FILE).open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    report = render_report(summary, pairs, records, evaluation.criteria_scores,
                           title=f"Policy evaluation: {args.prompts.name}")
    (out / REPORT_FILE).write_text(report, encoding="utf-8")
    summary["report"] = str(out / REPORT_FILE)
    return summary


def _format(summary: dict[str, Any]) -> str:
    width = max(len(k) for k in summary)
    lines = ["policy vs baseline (each pair judged in both orders)", "-" * (width + 14)]
    for key, value in summary.items():
        if key == "warnings":
            continue  # printed on stderr, one line each
        if isinstance(value, list):
            text = "[" + ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in value) + "]"
        elif value is None:
            text = "n/a"
        else:
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)
