"""The reward path under load: rollouts pushed through verl 0.9.1's real `RewardLoopManager` workers (8, local
Ray) into our `writing_rl` and `brpo` managers (coordinator + judge client) and, side by side on the same
workers and loopback judge, verl's own `naive` and `rate_limited` managers with a one-call judge function.

For each manager, judge latency (0 and 200 ms) and size (1024 and 8192 rollouts, BRPO in groups of 16), all
rollouts are sent at once, as verl's agent loop sends them when generation finishes in a burst:
  rollouts/s          finished rollouts per second of wall time
  p50/p99 s           time from a rollout's arrival at a reward worker to its reward
  group p50/p99 s     BRPO: from a group's last rollout being sent to all its rewards
  wait p99 s          BRPO: from a group's last rollout reaching the coordinator to all its rewards (what the
                      reward path adds after generation; the backlog in verl's workers is not in it)
  judge calls         HTTP requests the judge server saw (BRPO: 15 x 2 orders per group of 16)
  x naive             rollouts/s as a multiple of `naive`'s in the same row (same size and judge latency)
  coord cpu           our coordinator's CPU time over the wall time (100% = one core: the point where one
                      coordinator would cap the job and splitting it by uid would pay)
In a burst every rollout queues behind the others, so the latencies above are mostly that backlog. A second table
sends --paced-size rollouts at --paced-rate per second (below every manager's capacity here), so a BRPO group's
wait after its last rollout shows what the reward path itself adds to the judge latency.
BRPO's 8192-rollout burst keeps 8192 calls waiting at once, more than 8 of verl's reward workers accept (Ray's
1000 concurrent calls per actor), so that row runs with the 17 workers preflight asks for.

    .venv/bin/python benchmarks/reward_path.py [--sizes 1024 8192] [--latencies 0 0.2] [--repeats 3]
                                               [--paced-rate 100]
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
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from writing_rl.curriculum.index_creation import create_index
from writing_rl.models.tokenizer import gpt2_tokenizer_dir
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.verl_glue.compatibility import RAY_ASYNC_ACTOR_MAX_CONCURRENCY
from writing_rl.verl_glue.settings import reward_settings_from_config

WORKERS = 8
GROUP = 16
RATE_LIMITED_CONCURRENCY = 256
"""verl's `rate_limited` manager: requests in flight per reward worker (its semaphore is per process)."""
JOB_JUDGE_CONCURRENCY = RATE_LIMITED_CONCURRENCY * WORKERS
"""Ours, job-wide: the same budget `rate_limited` gets over 8 workers (`naive` has no limit at all)."""
HERE = Path(__file__).resolve().parent
VERL_MANAGERS = {"naive": ("naive", 1), "naive_both": ("naive", 2), "rate_limited": ("rate_limited", 1)}
"""verl's own managers with benchmarks/judge_score.py: one judge call per rollout, or two (`naive_both`: both
orders, as BRPO judges, so the two make the same kind of judge calls: BRPO 15 x 2 per 16 rollouts, this 2 x 1)."""


def rows(n_prompts: int) -> list[dict[str, Any]]:
    return [{"data_source": "writing", "prompt": [{"role": "user", "content": f"Write piece {i}."}],
             "reward_model": {"style": "model", "ground_truth": {
                 "prompt": f"Write piece {i}.", "target": ["ref QUALITY=3", "ref QUALITY=5", "ref QUALITY=7"],
                 "criteria": None, "id": f"p{i}"}},
             "extra_info": {"index": f"p{i}", "split": "train"}} for i in range(n_prompts)]


def manager_config(manager: str, tokenizer_dir: str, server: JudgeServerProcess, n_prompts: int, n: int,
                   work: Path, workers: int, judge_concurrency: int) -> Any:
    train = work / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows(n_prompts)), train)
    experiment = f"bench-{uuid.uuid4().hex[:8]}"
    common = [f"reward.num_workers={workers}", f"actor_rollout_ref.rollout.n={n}", f"data.train_files={train}",
              f"data.train_batch_size={n_prompts}"]
    if manager in VERL_MANAGERS:
        verl_name, orders = VERL_MANAGERS[manager]
        return reward_loop_config(tokenizer_dir, [
            *common, f"reward.reward_manager.name={verl_name}", f"+reward.max_concurrent={RATE_LIMITED_CONCURRENCY}",
            f"reward.custom_reward_function.path={HERE / 'judge_score.py'}",
            "reward.custom_reward_function.name=judge_score",
            f"+reward.custom_reward_function.reward_kwargs.base_url={server.base_url}",
            f"+reward.custom_reward_function.reward_kwargs.orders={orders}"])
    create_index([train], experiment, work / "run")
    return reward_loop_config(tokenizer_dir, [
        *common, f"reward.reward_manager.name={manager}", f"+reward.reward_kwargs.experiment={experiment}",
        f"+reward.reward_kwargs.run_dir={work / 'run'}", "+reward.reward_kwargs.judge.cache_path=none",
        f"+reward.reward_kwargs.judge.base_url={server.base_url}", "+reward.reward_kwargs.judge.model=test-judge",
        f"+reward.reward_kwargs.judge.max_concurrency={judge_concurrency}"])


def coordinator_cpu_s() -> float:
    """CPU seconds used so far by every live coordinator process on this machine."""
    total = 0.0
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        if process.info["cmdline"] and process.info["cmdline"][0].startswith("ray::JudgeCoordinator"):
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return total


async def push(workers: list, items: list[tuple[str, Any]], pace: float | None = None
               ) -> tuple[float, list[float], dict[str, float]]:
    """Send every rollout at once, or `pace` rollouts per second (round robin over workers); per-rollout
    arrival-to-reward seconds and per-group last-send-to-last-reward seconds."""
    sent: dict[int, float] = {}
    last_sent: dict[str, float] = {}
    done: dict[str, float] = defaultdict(float)

    async def one(i: int, uid: str, data: Any) -> float:
        if pace:
            await asyncio.sleep(i / pace)
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
    """Every worker started and through its first rollouts (a group of n each, fresh uids), so no worker's start-up
    or first call lands in the measured window."""
    ray.get([worker.__ray_ready__.remote() for worker in workers])
    items = []
    for w in range(len(workers)):
        uid = f"warm-{w}-{uuid.uuid4().hex[:8]}"
        items += [(uid, rollout_data(tokenizer, row, f"warm {s} QUALITY={s % 9 + 1}", uid, s)) for s in range(n)]
    asyncio.run(push(workers, items))


def fresh_items(table: list[dict[str, Any]], tokenizer: Any, n: int) -> list[tuple[str, Any]]:
    """n rollouts per row under a new uid per row (a new group, a new step's worth of prompts)."""
    items = []
    for row in table:
        uid = f"{row['extra_info']['index']}-{uuid.uuid4().hex[:8]}"
        items += [(uid, rollout_data(tokenizer, row, f"draft {s} QUALITY={1 + (s * 7) % 9}", uid, s))
                  for s in range(n)]
    return items


def percentile(values: Any, q: float) -> float:
    """NaN for no values (a manager without groups): the table shows it as such, not as 0."""
    values = np.asarray(values, dtype=float)
    return float(np.percentile(values, q)) if values.size else float("nan")


def group_waits(config: Any, groups: int) -> np.ndarray:
    """The coordinator's last `groups` BRPO groups: seconds from closing to all rewards."""
    coordinator = ray.get_actor(reward_settings_from_config(config).coordinator_name())
    return np.array(ray.get(coordinator.stats.remote())["brpo"]["closed_to_answered_s"][-groups:])


def run_one(manager: str, size: int, latency: float, tokenizer_dir: str, tokenizer: Any, repeats: int,
            judge_concurrency: int, pace: float | None = None) -> dict[str, Any]:
    """`repeats` pushes on the same workers; the one with the median rollouts/s is reported (a 1024-rollout push
    lasts about three seconds, where one stall of this machine moves a single measurement by a fifth)."""
    n = GROUP if manager == "brpo" else 1
    n_prompts = size // n
    # every BRPO rollout holds a reward-worker slot while its group gathers; verl's workers take at most 1000
    # calls each, so a burst beyond that needs more workers (preflight and the manager refuse fewer)
    workers_needed = -(-2 * size // RAY_ASYNC_ACTOR_MAX_CONCURRENCY) if manager == "brpo" else 0
    n_workers = max(WORKERS, workers_needed)
    measured = []
    with JudgeServerProcess(mode="scores" if manager == "brpo" else "verdict", latency=latency) as server, \
            tempfile.TemporaryDirectory() as tmp:
        config = manager_config(manager, tokenizer_dir, server, n_prompts, n, Path(tmp), n_workers,
                                judge_concurrency)
        table = rows(n_prompts)
        with reward_workers(config) as workers:
            warm_up(workers, tokenizer, table[0], n)  # coordinator and judge client start-up, not measured
            for _ in range(repeats):
                items = fresh_items(table, tokenizer, n)
                server.reset()
                cpu_before = coordinator_cpu_s()
                wall, lat, groups = asyncio.run(push(workers, items, pace))
                coordinator_cpu = coordinator_cpu_s() - cpu_before
                group_lat = np.array(list(groups.values())) if n > 1 else np.array([])
                waits = group_waits(config, n_prompts) if manager == "brpo" else np.array([])
                measured.append({
                    "manager": manager, "size": size, "latency": latency, "workers": n_workers, "rate": size / wall,
                    "wall": wall, "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                    "g50": percentile(group_lat, 50), "g99": percentile(group_lat, 99),
                    "wait99": percentile(waits, 99),
                    "calls": server.stats()["requests"], "coordinator_cpu": coordinator_cpu / wall})
    return sorted(measured, key=lambda m: m["rate"])[len(measured) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--managers", nargs="+", default=["writing_rl", "brpo", "naive", "naive_both", "rate_limited"])
    parser.add_argument("--repeats", type=int, default=3,
                        help="pushes per row on the same workers; the median by rollouts/s is shown")
    parser.add_argument("--paced-rate", type=float, default=100.0, help="rollouts/s of the paced table (0: skip it)")
    parser.add_argument("--paced-size", type=int, default=1024)
    parser.add_argument("--judge-concurrency", type=int, default=JOB_JUDGE_CONCURRENCY,
                        help="our managers' job-wide judge requests in flight (judge.max_concurrency); the default is "
                             f"rate_limited's {RATE_LIMITED_CONCURRENCY} per worker x {WORKERS} workers")
    args = parser.parse_args()
    from verl.utils import hf_tokenizer

    tokenizer_dir = str(gpt2_tokenizer_dir(Path(tempfile.mkdtemp()) / "tokenizer"))
    tokenizer = hf_tokenizer(tokenizer_dir)
    ray.init(num_cpus=64, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false", "VERL_LOGGING_LEVEL": "WARN"}})
    print(f"{WORKERS} reward workers (BRPO bursts beyond 1000 waiting calls per worker: as many as preflight "
          f"requires); judge requests in flight: ours {args.judge_concurrency} job-wide, rate_limited "
          f"{RATE_LIMITED_CONCURRENCY} per worker, naive unlimited; BRPO groups of {GROUP}, both orders; "
          f"median of {args.repeats} pushes per row")
    print(f"{'manager':>12} {'rollouts':>8} {'judge s':>7} {'workers':>7} | {'rollouts/s':>10} {'x naive':>7} "
          f"{'wall s':>7} | {'p50 s':>6} {'p99 s':>6} | {'group p50':>9} {'group p99':>9} {'wait p99':>8} | "
          f"{'judge calls':>11} {'coord cpu':>9}")
    for latency in args.latencies:
        for size in args.sizes:
            # naive first: every other row of the cell is compared with it
            managers = sorted(args.managers, key=lambda m: m != "naive")
            naive_rate = None
            rows_out = []
            for manager in managers:
                r = run_one(manager, size, latency, tokenizer_dir, tokenizer, args.repeats, args.judge_concurrency)
                naive_rate = r["rate"] if manager == "naive" else naive_rate
                rows_out.append(r)
            for r in sorted(rows_out, key=lambda r: args.managers.index(r["manager"])):
                ratio = f"{r['rate'] / naive_rate:>7.2f}" if naive_rate else f"{'-':>7}"
                cpu = f"{r['coordinator_cpu']:>9.0%}" if r["manager"] in ("writing_rl", "brpo") else f"{'-':>9}"
                print(f"{r['manager']:>12} {r['size']:>8} {r['latency']:>7.1f} {r['workers']:>7} | {r['rate']:>10.0f} "
                      f"{ratio} {r['wall']:>7.2f} | {r['p50']:>6.2f} {r['p99']:>6.2f} | {r['g50']:>9.2f} "
                      f"{r['g99']:>9.2f} {r['wait99']:>8.2f} | {r['calls']:>11} {cpu}", flush=True)
    if args.paced_rate > 0:
        print(f"\npaced: {args.paced_size} rollouts at {args.paced_rate:g}/s (no backlog)")
        print(f"{'manager':>12} {'judge s':>7} | {'p50 s':>6} {'p99 s':>6} | {'group p50':>9} {'group p99':>9} "
              f"{'wait p99':>8}")
        for latency in args.latencies:
            for manager in args.managers:
                r = run_one(manager, args.paced_size, latency, tokenizer_dir, tokenizer, 1, args.judge_concurrency,
                            pace=args.paced_rate)
                print(f"{manager:>12} {latency:>7.1f} | {r['p50']:>6.2f} {r['p99']:>6.2f} | {r['g50']:>9.2f} "
                      f"{r['g99']:>9.2f} {r['wait99']:>8.2f}", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
