"""`writing-rl genrm synthesize`: cold-start SFT data for the pairwise GenRM from a teacher judge."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from writing_rl.cli.judging import format_summary, run_interruptible, skip_identical_pairs
from writing_rl.cli.options import (
    INTERRUPTED,
    add_judge_options,
    check_out_path,
    judge_settings_from_args,
    positive_int,
    usd_per_mtok,
)
from writing_rl.data.rows import DataError
from writing_rl.genrm.rl_rows import load_genrm_template
from writing_rl.genrm.sft_rows import sft_rows, write_sft_parquet
from writing_rl.genrm.synthesis import Prices, estimate, synthesis_report
from writing_rl.judge.client import JudgeClient, with_v1
from writing_rl.judge.errors import JudgeCacheError
from writing_rl.judge.evaluation import (
    PairResult,
    PreferencePair,
    evaluate_pairs,
    in_pair_order,
    load_pairs,
    usable_judgements,
)
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import PromptTemplate

NO_VERDICT = 1


def add_genrm_commands(subparsers: argparse._SubParsersAction) -> None:
    genrm = subparsers.add_parser("genrm", help="data for training the pairwise GenRM",
                                  description="Data for training the pairwise generative reward model (GenRM).")
    commands = genrm.add_subparsers(dest="genrm_command", required=True)
    synth = commands.add_parser(
        "synthesize", help="teacher critiques in both orders -> SFT parquet of the consistent ones",
        description="A teacher judge (any OpenAI-compatible endpoint) critiques every pair in both orders with "
                    "the GenRM prompt file. A pair is kept only when the teacher scores the chosen text "
                    "strictly higher in both orders; both orders of a kept pair become SFT rows (the data "
                    "doubles), in verl's multi-turn SFT format: a 'messages' column of system, user and "
                    "assistant turns, the assistant turn being the teacher's whole output. Reports the kept "
                    "rate, both-order consistency, why pairs were dropped, tokens paid and, with prices, "
                    "the cost. Judgements are cached (--cache; by default beside OUT, e.g. sft.parquet -> "
                    "sft.judge-cache.sqlite), so a rerun, also after Ctrl-C (which writes the rows of the pairs "
                    "finished so far and exits 130), pays only for what is missing. OUT is replaced by this "
                    "run's rows; a run that would write fewer rows than OUT holds (e.g. --limit after a full run) "
                    "is refused before anything is sent unless --replace is given. While a run writes OUT, it holds "
                    "OUT.lock beside it, and a second run on the same OUT is refused at once. Exit code 1 when no "
                    "judgement gave a verdict.")
    synth.add_argument("--pairs", required=True, type=Path,
                       help="JSONL, JSON array or parquet with fields prompt, chosen, rejected (optional id), "
                            "e.g. the train.parquet of `writing-rl data pairs`")
    synth.add_argument("--out", required=True, type=Path, help="the SFT parquet file to write (.parquet)")
    synth.add_argument("--template", default="genrm",
                       help="GenRM prompt file or built-in name (default genrm); it must ask for two scores "
                            r"(\boxed{a, b}) and have no {criteria} placeholder")
    synth.add_argument("--limit", type=positive_int, help="only the first N pairs, for a quick look")
    synth.add_argument("--replace", action="store_true",
                       help="replace OUT even when it holds more rows than this run can write (2 per pair), e.g. "
                            "the output of an earlier full run; a warning names both row counts")
    synth.add_argument("--dry-run", action="store_true",
                       help="send nothing: print the number of calls (2 per pair), the estimated prompt tokens "
                            "(4 characters a token, rough), the completion tokens at most (max tokens per call) "
                            "and, with prices, the most it can cost")
    synth.add_argument("--usd-per-mtok-in", type=usd_per_mtok, metavar="USD",
                       help="price of a million prompt tokens, for the cost in the report and the dry run")
    synth.add_argument("--usd-per-mtok-out", type=usd_per_mtok, metavar="USD",
                       help="price of a million completion tokens")
    synth.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_judge_options(synth)
    synth.set_defaults(handler=run_synthesize)


def _default_cache(settings: JudgeSettings, out: Path) -> JudgeSettings:
    """Synthesis is paid work: without --cache or JUDGE_CACHE_PATH, cache beside the output file."""
    if settings.cache_path:
        return settings
    return dataclasses.replace(settings, cache_path=str(out.with_suffix(".judge-cache.sqlite")))


def _check_cache(cache: str | None, inputs: dict[str, Path]) -> None:
    """The cache is a SQLite file of its own: opening one of the command's input files as the cache fails, and
    advice to delete the cache file would then be advice to delete an input."""
    for option, path in inputs.items():
        if cache and Path(cache).resolve() == path.resolve():
            raise DataError(f"--cache {cache}: is the {option} file, an input of this command; the judge cache is "
                            "a SQLite file of its own: give another file name (or leave --cache out: it goes beside "
                            "--out)")


def _teacher_client(settings: JudgeSettings) -> JudgeClient:
    """The teacher's client, its cache opened; a cache file that is no SQLite database is named by its option."""
    try:
        return JudgeClient(settings, fail_fast_on_connect=True)
    except JudgeCacheError as exc:
        if not isinstance(exc.__cause__, sqlite3.DatabaseError):
            raise
        raise DataError(f"--cache {settings.cache_path}: cannot be used as the judge cache ({exc.__cause__}); give "
                        f"another file with --cache, or delete {settings.cache_path} if it is a damaged judge cache "
                        "of an earlier run") from exc


@contextmanager
def _only_run_on(out: Path) -> Iterator[None]:
    """Hold OUT.lock while this run judges and writes OUT: a second run on the same OUT is refused at once, before
    it pays for anything, rather than both paying and one run's rows replacing the other's."""
    lock_path = out.with_name(out.name + ".lock")
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise DataError(f"--out {out}: another `writing-rl genrm synthesize` is writing this file (it holds "
                        f"{lock_path}); wait for it to finish, or give another --out") from exc
    try:
        yield
    finally:
        lock.release()


def _existing_rows(out: Path) -> int:
    """Rows of the parquet file an earlier run left at OUT (0 when there is none, or it is no parquet file)."""
    try:
        return pq.read_metadata(out).num_rows
    except (OSError, pa.ArrowInvalid):
        return 0


def _no_verdict_advice(results: Sequence[PairResult], base_url: str) -> str:
    """Where every call got HTTP 404 from a base URL without /v1, the fix is almost always adding /v1."""
    suggestion = with_v1(base_url)
    if suggestion and {c.status for r in results for c in (r.chosen_first, r.chosen_second)} == {404}:
        return (f"every call got HTTP 404 (not found) from {base_url}; OpenAI-compatible servers answer under /v1: "
                f"try --base-url {suggestion}")
    return "check the teacher settings, -v shows each error"


def _print(args: argparse.Namespace, report: dict, title: str) -> None:
    print(json.dumps(report) if args.json else format_summary(report, title), flush=True)


def run_synthesize(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".parquet":
        raise DataError(f"--out {args.out}: verl's SFT trainer reads parquet; give a file ending in .parquet")
    if args.out.is_dir():
        raise DataError(f"--out {args.out}: is a directory; give a file name, e.g. {args.out / 'sft.parquet'}")
    settings = _default_cache(judge_settings_from_args(args), args.out)
    check_out_path(args.out, args.pairs, settings.cache_path)
    template = load_genrm_template(args.template)
    _check_cache(settings.cache_path, {"--pairs": args.pairs, "--template": template.path})
    pairs, _ = skip_identical_pairs(args.pairs, load_pairs(args.pairs)[: args.limit])
    prices = Prices(args.usd_per_mtok_in, args.usd_per_mtok_out)
    if args.dry_run:
        _print(args, estimate(pairs, template, settings, prices), "genrm synthesize --dry-run (nothing was sent)")
        return 0
    with _only_run_on(args.out):
        return _synthesize(args, settings, template, pairs, prices)


def _synthesize(args: argparse.Namespace, settings: JudgeSettings, template: PromptTemplate,
                pairs: list[PreferencePair], prices: Prices) -> int:
    existing = _existing_rows(args.out)
    if existing > 2 * len(pairs) and not args.replace:
        raise DataError(f"--out {args.out}: holds {existing} row(s) from an earlier run, and this run of "
                        f"{len(pairs)} pair(s) writes {2 * len(pairs)} at most, which would replace them; give "
                        "another --out, or add --replace to replace it")
    judge = PairwiseJudge(_teacher_client(settings), template)
    progress = sys.stderr.isatty() or not args.json
    results, finished = run_interruptible(
        judge, lambda finished: evaluate_pairs(judge, pairs, progress=progress, finished=finished,
                                               desc="teacher judging pairs"))
    interrupted = results is None
    if results is None:
        results = in_pair_order(finished, pairs)
    rows = sft_rows(results, template)
    report = {**synthesis_report(results, prices), "http_requests": judge.client.usage.http_requests,
              "out": str(args.out), "cache": settings.cache_path}
    _print(args, report, "genrm synthesize (teacher judged each pair in both orders)")
    try:
        write_sft_parquet(rows, args.out)
    except OSError as exc:
        raise DataError(f"--out {args.out}: cannot write ({exc.strerror}); the judgements are cached in "
                        f"{settings.cache_path}, a rerun costs nothing") from exc
    if len(rows) < existing:
        print(f"writing-rl: warning: replaced {args.out}: it held {existing} row(s) from an earlier run, now "
              f"{len(rows)}; rerunning the earlier command with the same cache rebuilds them without paying again",
              file=sys.stderr)
    if interrupted:
        print(f"writing-rl: interrupted: {len(results)} of {len(pairs)} pair(s) judged; {args.out} holds the "
              f"{len(rows)} row(s) of those; rerun the same command to finish (cached judgements are free)",
              file=sys.stderr)
        return INTERRUPTED
    if not usable_judgements(results):
        print("writing-rl: error: no judgement gave a verdict (see judge_failures and parse_failures); "
              f"{_no_verdict_advice(results, settings.base_url)}", file=sys.stderr)
        return NO_VERDICT
    if not rows:
        print(f"writing-rl: warning: the teacher was right in both orders on no pair; {args.out} has no rows",
              file=sys.stderr)
    return 0
