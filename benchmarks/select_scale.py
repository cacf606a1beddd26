"""Margin-aware selection at scale: judge calls made vs the all-pairs count, wall time, calls per second.

The real selection machinery (`Selector`: cached per-endpoint clients, per-endpoint limits, the pairwise
judge in both orders) runs against two loopback servers on this machine: the writer server playing the
policy and 4 candidates (scripted qualities, so margins vary by prompt and some prompts have tied
candidates) and the test judge. Each configuration starts from empty caches; the last row reruns the
first with its caches, as a resumed run does. The servers share the machine's cores with the client, so
the rates are a floor, not what a remote endpoint would allow.

Run: python benchmarks/select_scale.py [--prompts 2000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import load_template
from writing_rl.selection.calls import StopGate
from writing_rl.selection.endpoints import Endpoint
from writing_rl.selection.estimate import all_pairs_calls
from writing_rl.selection.generation import Writer
from writing_rl.selection.pair_judge import PairJudge
from writing_rl.selection.prompts import SelectionPrompt
from writing_rl.selection.select import Selector
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.testing.writer_process import WriterServerProcess

CANDIDATES = {"cand-a": 2, "cand-b": 5, "cand-c": 7, "cand-d": 9}
POLICY_BY_TAG = {"[p1]": 1, "[p4]": 4, "[p6]": 6, "[p8]": 8, "[p10]": 10}
TAGS = [*POLICY_BY_TAG, "[tie]"]


def writer_config() -> dict:
    overrides = [{"model": "policy", "prompt_contains": tag, "quality": q} for tag, q in POLICY_BY_TAG.items()]
    overrides.append({"model": "cand-b", "prompt_contains": "[tie]", "quality": 7})  # ties cand-c: not orderable
    return {"qualities": {"policy": 3, **CANDIDATES}, "overrides": overrides}


async def select_once(prompts: list[SelectionPrompt], writers_url: str, judge_url: str, cache_dir: Path,
                      concurrency: int, top: int | None) -> dict:
    gate = StopGate()
    endpoints = [Endpoint(name, JudgeSettings(base_url=writers_url, model=name, max_concurrency=concurrency),
                          f"[{name}]").with_default_cache(cache_dir) for name in ("policy", *CANDIDATES)]
    writers = [Writer(e, gate) for e in endpoints]
    judge_settings = JudgeSettings(base_url=judge_url, model="test-judge", max_concurrency=concurrency,
                                   cache_path=str(cache_dir / "judge.sqlite"))
    judge = PairJudge(PairwiseJudge(JudgeClient(judge_settings), load_template("pairwise")), gate)
    started = time.monotonic()
    try:
        selection = await Selector(writers, judge, system_prompt=None, progress=False).select(
            prompts, top=top, min_margin=0.0)
    finally:
        for closable in (*writers, judge):
            await closable.aclose()
    wall = time.monotonic() - started
    generations = sum(w.counts.calls for w in writers)
    sent = sum(w.counts.calls - w.counts.cached for w in writers) + judge.counts.calls - judge.counts.cached
    return {"selected": len(selection.selected), "generations": generations, "judge_calls": judge.counts.calls,
            "cached": judge.counts.cached + sum(w.counts.cached for w in writers), "sent": sent, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight per endpoint")
    args = parser.parse_args()
    prompts = [SelectionPrompt(str(i), f"Write story {i} {TAGS[i % len(TAGS)]}") for i in range(args.prompts)]
    all_pairs = all_pairs_calls(len(prompts), len(CANDIDATES))
    header = (f"{'run':<24}{'prompts':>8}{'selected':>9}{'generations':>12}{'judge calls':>12}{'all pairs':>10}"
              f"{'saved':>7}{'sent':>8}{'cached':>8}{'wall s':>8}{'calls/s':>9}")
    print(header)
    print("-" * len(header))
    with WriterServerProcess(**writer_config()) as writers, JudgeServerProcess() as judge, \
            tempfile.TemporaryDirectory() as tmp:
        runs = [("all eligible ranked", None, "a"), ("--top 10%", args.prompts // 10, "b"),
                ("rerun of the first", None, "a")]
        for label, top, cache in runs:
            row = asyncio.run(select_once(prompts, writers.base_url, judge.base_url, Path(tmp) / cache,
                                          args.concurrency, top))
            calls = row["generations"] + row["judge_calls"]
            print(f"{label:<24}{len(prompts):>8}{row['selected']:>9}{row['generations']:>12}{row['judge_calls']:>12}"
                  f"{all_pairs:>10}{1 - row['judge_calls'] / all_pairs:>7.0%}{row['sent']:>8}{row['cached']:>8}"
                  f"{row['wall_s']:>8.1f}{calls / row['wall_s']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
