"""The curriculum index at 10k / 100k / 1M prompts: what writing it costs judging.

Side by side in one run, per size:
- `sync`: the previous approach (every promoted group re-renders the whole file, twice, and writes and
  fsyncs it on the coordinator's event loop);
- `coalesced`: `Curriculum` (a promoted group marks keys dirty; one background thread writes at most once
  per second; `save(force=True)` writes at step end).

Columns: the event loop's cost per finished group (record + save), the step-end flush (`save(force=True)`
after 1024 promotions), and how late a coroutine that sleeps 1 ms wakes up (p50 / p99 / max) while groups
finish every 5 ms for 3 s (a stand-in for judge calls: every ms late is a ms every judge call waits), with
the groups that finished in those 3 s. Run: `python benchmarks/index_scale.py` (about 2 minutes, 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from writing_rl.curriculum.index_file import render_index, write_index
from writing_rl.curriculum.schedule import Curriculum, PromotionRule

LADDER = 3
STEP_GROUPS = 1024
LOAD_S = 3.0
GROUP_EVERY_S = 0.005


class SyncIndex:
    """The previous `Curriculum.save()`: render, compare, write (render again) and fsync, on the caller's thread."""

    def __init__(self, path: Path, state: dict[str, int]):
        self.path, self.state = path, dict(state)
        self.written = render_index(self.state)

    def promote(self, key: str) -> None:
        self.state[key] = min(self.state[key] + 1, LADDER - 1)

    def save(self) -> None:
        text = render_index(self.state)
        if text != self.written:
            write_index(self.path, self.state)
            self.written = text


class CoalescedIndex:
    def __init__(self, path: Path, state: dict[str, int]):
        write_index(path, state)
        self.curriculum = Curriculum(path, dict.fromkeys(state, LADDER), PromotionRule.parse("any"))

    def promote(self, key: str) -> None:
        c = self.curriculum
        c.record_group(key, c.rung(key), 1, 1, step=1)

    def save(self) -> None:
        self.curriculum.save()

    def flush(self) -> None:
        self.curriculum.save(force=True)


def per_group_ms(index: SyncIndex | CoalescedIndex, keys: list[str], samples: int) -> float:
    start = time.perf_counter()
    for key in keys[:samples]:
        index.promote(key)
        index.save()
    return (time.perf_counter() - start) / samples * 1e3


def step_flush_ms(index: SyncIndex | CoalescedIndex, keys: list[str]) -> float:
    for key in keys[:STEP_GROUPS]:
        index.promote(key)
    start = time.perf_counter()
    index.flush() if isinstance(index, CoalescedIndex) else index.save()
    return (time.perf_counter() - start) * 1e3


async def under_load(finish_group: Callable[[int], None]) -> tuple[list[float], int]:
    """Lateness of a 1 ms sleeper (ms) while a group finishes every `GROUP_EVERY_S`."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lateness.append((time.perf_counter() - start - 0.001) * 1e3)

    async def judging() -> int:
        end, groups = time.perf_counter() + LOAD_S, 0
        while time.perf_counter() < end:
            finish_group(groups)
            groups += 1
            await asyncio.sleep(GROUP_EVERY_S)
        done.set()
        return groups

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)  # the ticker is running before the first group finishes
    groups = await judging()
    await tick
    return lateness, groups


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure(size: int, folder: Path) -> list[tuple]:
    state = {f"prompt-{i:07d}": 0 for i in range(size)}
    keys = list(state)
    rows = []
    for name, make in (("sync", SyncIndex), ("coalesced", CoalescedIndex)):
        path = folder / f"index_{name}_{size}.json"
        if name == "sync":
            write_index(path, state)
        built = time.perf_counter()
        index = make(path, state)
        setup_s = time.perf_counter() - built
        samples = 2000 if name == "coalesced" else max(3, min(200, 2_000_000 // size))
        group_ms = per_group_ms(index, keys, samples)
        flush_ms = step_flush_ms(index, keys[samples:])
        offset = samples + STEP_GROUPS

        def finish_group(i: int, index: SyncIndex | CoalescedIndex = index, offset: int = offset) -> None:
            index.promote(keys[(offset + i) % size])
            index.save()

        lateness, groups = asyncio.run(under_load(finish_group))
        if isinstance(index, CoalescedIndex):
            index.flush()
            index.curriculum.close()
        rows.append((size, name, group_ms, flush_ms, percentile(lateness, 50), percentile(lateness, 99),
                     max(lateness), groups, setup_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    header = (f"{'prompts':>9}  {'method':<10}  {'group on loop ms':>16}  {'step flush ms':>13}  "
              f"{'1ms tick late p50/p99/max ms':>29}  {'groups in 3 s':>13}  {'start s':>7}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
        for size in args.sizes:
            for row in measure(size, Path(folder)):
                size_, name, group_ms, flush_ms, p50, p99, worst, groups, setup_s = row
                print(f"{size_:>9,}  {name:<10}  {group_ms:>16.3f}  {flush_ms:>13.1f}  "
                      f"{f'{p50:.2f} / {p99:.2f} / {worst:.1f}':>29}  {groups:>13}  {setup_s:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
