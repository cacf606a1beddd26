"""The reward path under load: rollouts pushed through verl 0.9.1's real `RewardLoopManager` workers (8, local
Ray) into our `writing_rl` and `brpo` managers (coordinator + judge client) and, side by side on the same
workers and loopback judge, verl's own `naive` and `rate_limited` managers with a one-call judge function.

For each manager, judge latency (0 and 200 ms) and size (1024 and 8192 rollouts, BRPO in groups of 16), all
rollouts are sent at once, as verl's agent loop sends them when generation finishes in a burst:
  rollouts/s          finished rollouts per second of wall time
  p50/p99 s           time from a rollout's arrival at a reward worker to its reward
  group p50/p99 s     BRPO: from a group's last rollout being sent to all its rewards
  judge calls         HTTP requests the judge server saw (BRPO: 15 x 2 orders per group of 16)
BRPO's 8192-rollout burst keeps 8192 calls waiting at once, more than 8 of verl's reward workers accept (Ray's
1000 concurrent calls per actor), so that row runs with the 17 workers preflight asks for.

    .venv/bin/python benchmarks/reward_path.py [--sizes 1024 8192] [--latencies 0 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from writing_rl.curriculum.index_creation import create_index
from writing_rl.models.tokenizer import gpt2_tokenizer_dir
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.verl_glue.compatibility import RAY_ASYNC_ACTOR_MAX_CONCURRENCY

WORKERS = 8
GROUP = 16
JUDGE_CONCURRENCY = 256
HERE = Path(__file__).resolve().parent


def rows(n_prompts: int) -> list[dict[str, Any]]:
    return [{"data_source": "writing", "prompt": [{"role": "user", "content": f"Write piece {i}."}],
             "reward_model": {"style": "model", "ground_truth": {
                 "prompt": f"Write piece {i}.", "target": ["ref QUALITY=3", "ref QUALITY=5", "ref QUALITY=7"],
                 "criteria": None, "id": f"p{i}"}},
             "extra_info": {"index": f"p{i}", "split": "train"}} for i in range(n_prompts)]


def manager_config(manager: str, tokenizer_dir: str, server: JudgeServerProcess, n_prompts: int, n: int,
                   work: Path, workers: int) -> Any:
    train = work / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows(n_prompts)), train)
    experiment = f"bench-{uuid.uuid4().hex[:8]}"
    common = [f"reward.num_workers={workers}", f"actor_rollout_ref.rollout.n={n}", f"data.train_files={train}",
              f"data.train_batch_size={n_prompts}"]
    if manager in ("naive", "rate_limited"):
        return reward_loop_config(tokenizer_dir, [
            *common, f"reward.reward_manager.name={manager}", f"+reward.max_concurrent={JUDGE_CONCURRENCY}",
            f"reward.custom_reward_function.path={HERE / 'judge_score.py'}",
            "reward.custom_reward_function.name=judge_score",
            f"+reward.custom_reward_function.reward_kwargs.base_url={server.base_url}"])
    create_index([train], experiment, work / "run")
    return reward_loop_config(tokenizer_dir, [
        *common, f"reward.reward_manager.name={manager}", f"+reward.reward_kwargs.experiment={experiment}",
        f"+reward.reward_kwargs.run_dir={work / 'run'}", "+reward.reward_kwargs.judge.cache_path=none",
        f"+reward.reward_kwargs.judge.base_url={server.base_url}", "+reward.reward_kwargs.judge.model=test-judge",
        f"+reward.reward_kwargs.judge.max_concurrency={JUDGE_CONCURRENCY}"])


async def push(workers: list, items: list[tuple[str, Any]]) -> tuple[float, list[float], dict[str, float]]:
    """Send every rollout at once (round robin over workers); per-rollout arrival-to-reward seconds and per-group
    last-send-to-last-reward seconds."""
    sent: dict[int, float] = {}
    last_sent: dict[str, float] = {}
    done: dict[str, float] = defaultdict(float)

    async def one(i: int, uid: str, data: Any) -> float:
        ref = workers[i % len(workers)].compute_score.remote(data)
        sent[i] = last_sent[uid] = time.perf_counter()
        await ref
        end = time.perf_counter()
        done[uid] = max(done[uid], end)
        return end - sent[i]

    start = time.perf_counter()
    latencies = await asyncio.gather(*(one(i, uid, data) for i, (uid, data) in enumerate(items)))
    wall = time.perf_counter() - start
    return wall, list(latencies), {uid: done[uid] - last_sent[uid] for uid in done}


def warm_up(workers: list, tokenizer: Any, row: dict[str, Any], n: int) -> None:
    """One group per worker (a rollout each for n = 1), with fresh uids."""
    items = []
    for w in range(len(workers) if n == 1 else 1):
        uid = f"warm-{w}-{uuid.uuid4().hex[:8]}"
        items += [(uid, rollout_data(tokenizer, row, f"warm {s} QUALITY={s}", uid, s)) for s in range(n)]
    asyncio.run(push(workers, items))


def run_one(manager: str, size: int, latency: float, tokenizer_dir: str, tokenizer: Any) -> dict[str, Any]:
    n = GROUP if manager == "brpo" else 1
    n_prompts = size // n
    # every BRPO rollout holds a reward-worker slot while its group gathers; verl's workers take at most 1000
    # calls each, so a burst beyond that needs more workers (preflight and the manager refuse fewer)
    workers_needed = -(-2 * size // RAY_ASYNC_ACTOR_MAX_CONCURRENCY) if manager == "brpo" else 0
    n_workers = max(WORKERS, workers_needed)
    with JudgeServerProcess(mode="scores" if manager == "brpo" else "verdict", latency=latency) as server, \
            tempfile.TemporaryDirectory() as tmp:
        config = manager_config(manager, tokenizer_dir, server, n_prompts, n, Path(tmp), n_workers)
        table = rows(n_prompts)
        items = []
        for row in table:
            uid = f"{row['extra_info']['index']}-{uuid.uuid4().hex[:8]}"
            items += [(uid, rollout_data(tokenizer, row, f"draft {s} QUALITY={1 + (s * 7) % 9}", uid, s))
                      for s in range(n)]
        with reward_workers(config) as workers:
            warm_up(workers, tokenizer, table[0], n)  # coordinator and judge client start-up, not measured
            server.reset()
            wall, lat, groups = asyncio.run(push(workers, items))
        calls = server.stats()["requests"]
    group_lat = np.array(list(groups.values())) if n > 1 else np.array([])
    return {"manager": manager, "size": size, "latency": latency, "workers": n_workers, "rate": size / wall,
            "wall": wall,
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "g50": float(np.percentile(group_lat, 50)) if group_lat.size else float("nan"),
            "g99": float(np.percentile(group_lat, 99)) if group_lat.size else float("nan"), "calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--managers", nargs="+", default=["writing_rl", "brpo", "naive", "rate_limited"])
    args = parser.parse_args()
    from verl.utils import hf_tokenizer

    tokenizer_dir = str(gpt2_tokenizer_dir(Path(tempfile.mkdtemp()) / "tokenizer"))
    tokenizer = hf_tokenizer(tokenizer_dir)
    ray.init(num_cpus=64, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false", "VERL_LOGGING_LEVEL": "WARN"}})
    print(f"{WORKERS} reward workers (BRPO bursts beyond 1000 waiting calls per worker: as many as preflight "
          f"requires), judge concurrency {JUDGE_CONCURRENCY}, BRPO groups of {GROUP}, both orders")
    print(f"{'manager':>12} {'rollouts':>8} {'judge s':>7} {'workers':>7} | {'rollouts/s':>10} {'wall s':>7} | "
          f"{'p50 s':>6} {'p99 s':>6} | {'group p50':>9} {'group p99':>9} | {'judge calls':>11}")
    for latency in args.latencies:
        for size in args.sizes:
            for manager in args.managers:
                r = run_one(manager, size, latency, tokenizer_dir, tokenizer)
                print(f"{r['manager']:>12} {r['size']:>8} {r['latency']:>7.1f} {r['workers']:>7} | {r['rate']:>10.0f} "
                      f"{r['wall']:>7.2f} | {r['p50']:>6.2f} {r['p99']:>6.2f} | {r['g50']:>9.2f} {r['g99']:>9.2f} | "
                      f"{r['calls']:>11}",
                      flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
