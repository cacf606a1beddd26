"""Judge throughput: our client vs verl 0.9.1's `rate_limited` reward manager vs a 12-thread pool.

1024 judgements against the loopback test judge with fixed latency (200 ms +/- 20 ms), at
concurrency 16, 64 and 256; wall time and the ratio to the ideal ceil(N/C) x latency, timed after
C warm-up requests (a judge client in training is long-lived; its connections are open). The last
column is bare aiohttp (no limits, retries, cache or parsing): the floor this machine allows,
since the server shares its cores with the client. Then a
fault run (20% 429, 5% 500, 5% hangs, 5% malformed bodies): every judgement must end as a
verdict or an explicit failure, and the requests must stay within the retry budget.

Run: python benchmarks/judge_throughput.py [--n 1024] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.limited import RateLimitedRewardManager
from verl.utils import hf_tokenizer

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.parsing import parse_verdict
from writing_rl.judge.settings import JudgeSettings
from writing_rl.models.tokenizer import gpt2_tokenizer_dir
from writing_rl.prompts import load_template
from writing_rl.testing.server_process import JudgeServerProcess

TEMPLATE = load_template("pairwise")
THREADS = 12


def pair(i: int) -> tuple[str, str, str]:
    return f"Write story number {i}.", f"Story {i}: QUALITY={i % 7 + 1} once upon a time", f"Reference {i}: QUALITY=4"


async def run_ours(base_url: str, n: int, concurrency: int, *, timeout_s: float = 30.0,
                   max_retries: int = 6, warm: bool = True) -> tuple[float, list, JudgeClient]:
    client = JudgeClient(JudgeSettings(base_url=base_url, model="test-judge", max_concurrency=concurrency,
                                       timeout_s=timeout_s, max_retries=max_retries,
                                       backoff_initial_s=0.05, backoff_max_s=1.0))
    judge = PairwiseJudge(client, TEMPLATE)
    if warm:
        await asyncio.gather(*(judge.compare(*pair(i)) for i in range(concurrency)))
    started = time.monotonic()
    results = await asyncio.gather(*(judge.compare(*pair(i)) for i in range(n)))
    elapsed = time.monotonic() - started
    await client.aclose()
    return elapsed, results, client


async def run_bare_aiohttp(base_url: str, n: int, concurrency: int) -> float:
    """The floor of this machine: bare aiohttp POSTs under a semaphore; no limits, retries or parsing."""
    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def one(i: int) -> None:
            prompt, response, reference = pair(i)
            messages = TEMPLATE.render(prompt=prompt, response_a=response, response_b=reference)
            async with slots, http.post(f"{base_url}/chat/completions",
                                        json={"model": "test-judge", "messages": messages}) as reply:
                await reply.read()

        await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm: connections open
        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.monotonic() - started


def verl_items(tokenizer, n: int) -> list[DataProto]:
    items = []
    for i in range(n):
        prompt, response, reference = pair(i)
        ids = tokenizer.encode(response)
        prompt_ids = torch.tensor([tokenizer.encode(prompt)])
        response_ids = torch.tensor([ids])
        items.append(DataProto.from_dict(
            tensors={"prompts": prompt_ids, "responses": response_ids,
                     "attention_mask": torch.ones(1, prompt_ids.shape[1] + response_ids.shape[1], dtype=torch.long)},
            non_tensors={"data_source": np.array(["writing"], dtype=object),
                         "reward_model": np.array([{"ground_truth": {"prompt": prompt, "target": reference}}],
                                                  dtype=object),
                         "extra_info": np.array([{"index": i}], dtype=object)},
        ))
    return items


async def run_verl_rate_limited(base_url: str, items: list[DataProto], tokenizer, concurrency: int,
                                timeout_s: float = 30.0, warm: bool = True) -> tuple[float, list[dict]]:
    """verl's manager as a user would wire it: an async compute_score that calls the judge once
    (over aiohttp, as verl's own reward-loop HTTP code does)."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs) -> dict:
        messages = TEMPLATE.render(prompt=ground_truth["prompt"], response_a=solution_str,
                                   response_b=ground_truth["target"])
        async with http.post(f"{base_url}/chat/completions",
                             json={"model": "test-judge", "messages": messages}) as response:
            response.raise_for_status()
            body = json.loads(await response.read())
        verdict = parse_verdict(body["choices"][0]["message"]["content"])
        return {"score": 1.0 if verdict and verdict.value == "A" else 0.0}

    RateLimitedRewardManager._class_initialized = False  # its limiters are class-level: reset per run
    config = OmegaConf.create({"reward": {"max_concurrent": concurrency, "timeout": timeout_s}})
    manager = RateLimitedRewardManager(config, tokenizer, compute_score)
    if warm:
        await asyncio.gather(*(manager.run_single(item) for item in items[:concurrency]))
    started = time.monotonic()
    results = await asyncio.gather(*(manager.run_single(item) for item in items))
    elapsed = time.monotonic() - started
    await http.close()
    return elapsed, results


def run_thread_pool(base_url: str, n: int) -> float:
    """The original Writing-RL shape: a fixed pool of blocking threads, one call per response."""
    client = httpx.Client(timeout=30.0, limits=httpx.Limits(max_connections=THREADS))

    def one(i: int) -> str:
        prompt, response, reference = pair(i)
        messages = TEMPLATE.render(prompt=prompt, response_a=response, response_b=reference)
        reply = client.post(f"{base_url}/chat/completions", json={"model": "test-judge", "messages": messages})
        return reply.json()["choices"][0]["message"]["content"]

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(THREADS)))  # warm: connections open
        started = time.monotonic()
        list(pool.map(one, range(n)))
    client.close()
    return time.monotonic() - started


def throughput_table(n: int, latency: float, jitter: float) -> None:
    tokenizer = hf_tokenizer(str(gpt2_tokenizer_dir(Path(tempfile.mkdtemp()) / "tok")))
    items = verl_items(tokenizer, n)
    with JudgeServerProcess(latency=latency, jitter=jitter) as server:
        pool_s = run_thread_pool(server.base_url, n)
        print(f"\nthroughput: N={n} judgements, server latency {latency * 1000:.0f} ms +/- {jitter * 1000:.0f} ms")
        header = (f"{'C':>5} {'ideal s':>8} | {'ours s':>7} {'x ideal':>7} | {'verl rate_limited s':>19} "
                  f"{'x ideal':>7} | {f'{THREADS}-thread pool s':>17} {'x ideal':>7} | {'bare aiohttp s':>14} "
                  f"{'x ideal':>7}")
        print(header)
        print("-" * len(header))
        for concurrency in (16, 64, 256):
            ideal = math.ceil(n / concurrency) * latency
            server.reset()
            ours_s, results, _ = asyncio.run(run_ours(server.base_url, n, concurrency))
            assert all(r.verdict is not None for r in results)
            assert server.stats()["max_in_flight"] <= concurrency
            server.reset()
            verl_s, _ = asyncio.run(run_verl_rate_limited(server.base_url, items, tokenizer, concurrency))
            bare_s = asyncio.run(run_bare_aiohttp(server.base_url, n, concurrency))
            print(f"{concurrency:>5} {ideal:>8.2f} | {ours_s:>7.2f} {ours_s / ideal:>7.2f} | {verl_s:>19.2f} "
                  f"{verl_s / ideal:>7.2f} | {pool_s:>17.2f} {pool_s / ideal:>7.2f} | {bare_s:>14.2f} "
                  f"{bare_s / ideal:>7.2f}")


def fault_run(n: int, latency: float) -> None:
    faults = "rate_limit=0.2,error_500=0.05,hang=0.05,malformed=0.05"
    timeout_s, max_retries, concurrency = 1.0, 6, 64
    with JudgeServerProcess(latency=latency, hang=30.0, faults=faults, seed=7) as server:
        elapsed, results, client = asyncio.run(
            run_ours(server.base_url, n, concurrency, timeout_s=timeout_s, max_retries=max_retries, warm=False))
        requests = server.stats()["requests"]
        verdicts = sum(r.verdict is not None for r in results)
        failures = sum(r.failed for r in results)
        lost = n - verdicts - failures - sum(r.unparseable for r in results)
        server.reset()
        tokenizer = hf_tokenizer(str(gpt2_tokenizer_dir(Path(tempfile.mkdtemp()) / "tok")))
        verl_s, verl_results = asyncio.run(run_verl_rate_limited(
            server.base_url, verl_items(tokenizer, n), tokenizer, concurrency, timeout_s=timeout_s, warm=False))
        verl_errors = sum("error" in r["reward_extra_info"] or "timeout" in r["reward_extra_info"]
                          for r in verl_results)
    print(f"\nfault run: N={n}, C={concurrency}, faults {faults}, timeout {timeout_s}s, retries {max_retries}")
    print(f"  ours: {verdicts} verdicts, {failures} explicit failures, {lost} lost, {elapsed:.2f}s; "
          f"{requests} requests (budget {n * (max_retries + 1)}); retries by kind {dict(client.usage.retries)}")
    print(f"  verl rate_limited (no retries): {n - verl_errors} scored, {verl_errors} errors/timeouts silently "
          f"scored 0.0, {verl_s:.2f}s")
    assert lost == 0, "a judgement was lost"
    assert requests <= n * (max_retries + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--jitter", type=float, default=0.02)
    args = parser.parse_args()
    # verl and torch leave ~10^6 long-lived objects; freezing them keeps full GC passes from
    # stalling the event loop (what a long-lived judge process should do after start-up too).
    gc.freeze()
    throughput_table(args.n, args.latency, args.jitter)
    fault_run(args.n, args.latency)


if __name__ == "__main__":
    main()
