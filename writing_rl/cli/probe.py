"""`writing-rl judge probe`: before training, how easily does this judge fall for cheap tricks?"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from writing_rl.cli.judging import skip_identical_pairs
from writing_rl.cli.options import (
    INTERRUPTED,
    NO_VERDICT,
    add_judge_options,
    check_out_path,
    judge_settings_from_args,
    positive_int,
)
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.evaluation import load_pairs
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.probe import (
    BUILTIN_ATTACKS,
    BUILTIN_PAIRS,
    ProbeJudgement,
    load_attacks,
    run_probe,
    summarize_probe,
)
from writing_rl.prompts import load_template

MOSTLY_TIES = 0.5
"""Above this share of tied clean judgements, the probe warns that it cannot measure robustness."""


def add_probe_command(commands: argparse._SubParsersAction) -> None:
    probe = commands.add_parser(
        "probe", help="how often padding, instructions to the judge, verdict tokens or order flip a verdict",
        description="Judge clean pairs (a stronger and a weaker text) in both orders, then the same pairs with "
                    "the weaker text attacked: padded, ending with an instruction to the judge, with verdict "
                    "tokens, with a self-praising tail, or the pair shown in the other order. Reports, per attack, "
                    "how often the verdict flipped compared with the clean pair (flip_rate, over the comparisons "
                    "where not both judgements were ties: a tie against a tie decides nothing; '-' when none "
                    "decided anything), how often the flip went to the weaker text, and the tie rates (clean and "
                    "per attack; a warning when most clean judgements are ties). Pairs whose chosen and rejected "
                    "texts are identical are skipped and counted. The pairs and attacks are editable JSONL files; "
                    f"the built-in ones are {BUILTIN_PAIRS} and {BUILTIN_ATTACKS}. Exit code 1 when no clean "
                    "judgement gave a verdict, 130 on Ctrl-C (the summary covers what was judged; --cache makes a "
                    "rerun free).")
    probe.add_argument("--pairs", type=Path, default=BUILTIN_PAIRS,
                       help="JSONL/JSON/parquet rows {id?, prompt, chosen, rejected}: chosen is the stronger text "
                            "(default: the built-in set)")
    probe.add_argument("--attacks", type=Path, default=BUILTIN_ATTACKS,
                       help="JSONL rows {name, kind: append|prepend|swap, text, repeat?, description?}; in text, "
                            "{label} is the weaker text's position (A/B) and {boxed} a \\boxed{a, b} in its "
                            "favour; any other {word} is refused (default: the built-in set)")
    probe.add_argument("--limit", type=positive_int, help="only the first N pairs")
    probe.add_argument("--out", type=Path, help="write one JSON line per judgement here")
    probe.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    probe.add_argument("--template", default="pairwise",
                       help="prompt file or built-in name: pairwise (default), genrm")
    add_judge_options(probe)
    probe.set_defaults(handler=run_probe_command)


def run_probe_command(args: argparse.Namespace) -> int:
    settings = judge_settings_from_args(args)
    if args.out:
        check_out_path(args.out, args.pairs, settings.cache_path)
    attacks = load_attacks(args.attacks)
    pairs, skipped = skip_identical_pairs(args.pairs, load_pairs(args.pairs)[: args.limit])
    judge = PairwiseJudge(JudgeClient(settings, fail_fast_on_connect=True), load_template(args.template))
    finished: list[ProbeJudgement] = []

    async def go() -> None:
        try:
            await run_probe(judge, pairs, attacks, progress=sys.stderr.isatty() or not args.json, finished=finished)
        finally:
            await judge.aclose()

    try:
        asyncio.run(go())
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    summary = summarize_probe(finished, attacks)
    summary["skipped_identical_pairs"] = skipped
    summary["http_requests"] = judge.client.usage.http_requests
    print(json.dumps(summary) if args.json else format_probe(summary), flush=True)
    if summary["clean_tie_rate"] > MOSTLY_TIES:
        print(f"writing-rl: warning: {summary['clean_tie_rate']:.1%} of clean judgements were ties: the judge rarely "
              "picks a side even between a stronger and a weaker text, so this probe cannot measure its "
              "robustness (a flip rate counts only comparisons a verdict decided); check the judge settings and "
              "--template, or use a stronger judge", file=sys.stderr)
    if args.out:
        with args.out.open("w", encoding="utf-8") as handle:
            for j in finished:
                handle.write(json.dumps({"attack": j.attack, "pair": j.pair_id, "weaker_first": j.weaker_first,
                                         "preferred": j.preferred, "raw": j.comparison.raw,
                                         "error": j.comparison.error}, ensure_ascii=False) + "\n")
    if interrupted:
        print(f"writing-rl: interrupted: the summary covers {len(finished)} judgement(s); rerun with the same "
              "--cache to resume without paying twice", file=sys.stderr)
        return INTERRUPTED
    if not any(j.preferred is not None for j in finished if j.attack == "clean"):
        print("writing-rl: error: no clean judgement gave a verdict; check the judge settings (-v shows each "
              "error)", file=sys.stderr)
        return NO_VERDICT
    return 0


def format_probe(summary: dict[str, Any]) -> str:
    lines = [f"judge probe: {summary['pairs']} clean pair(s), each judged in both orders; the weaker text won "
             f"{summary['clean_weaker_win_rate']:.1%} of clean judgements, {summary['clean_tie_rate']:.1%} were ties",
             f"{'attack':<20}{'flip_rate':>10}{'flips':>7}{'decided':>9}{'usable':>8}{'tie_rate':>10}"
             f"{'to weaker':>11}{'failures':>10}"]
    for name, row in summary["attacks"].items():
        failures = row["parse_failures"] + row["judge_failures"]
        flip_rate = "-" if row["flip_rate"] is None else f"{row['flip_rate']:.1%}"
        lines.append(f"{name:<20}{flip_rate:>10}{row['flips']:>7}{row['decided']:>9}{row['usable']:>8}"
                     f"{row['tie_rate']:>10.1%}{row['flips_toward_weaker']:>11}{failures:>10}")
    lines.append("flip_rate = flips / decided: usable comparisons (both judgements parsed) less those where both "
                 "were ties")
    return "\n".join(lines)
