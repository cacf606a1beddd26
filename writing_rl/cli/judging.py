"""Running judgements from a command: interruptible by Ctrl-C, identical pairs skipped, summaries printed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from writing_rl.data.rows import DataError
from writing_rl.judge.evaluation import PairResult, PreferencePair, split_identical
from writing_rl.judge.pairwise import PairwiseJudge

T = TypeVar("T")


def run_interruptible(judge: PairwiseJudge, work: Callable[[list[PairResult]], Coroutine[Any, Any, T]]
                      ) -> tuple[T | None, list[PairResult]]:
    """(result, finished): `work(finished)` run to the end, or (None, what it finished) after Ctrl-C.

    The judge is closed either way, so nothing is left talking to a closed HTTP session.
    """
    finished: list[PairResult] = []

    async def go() -> T:
        try:
            return await work(finished)
        finally:
            await judge.aclose()

    try:
        return asyncio.run(go()), finished
    except KeyboardInterrupt:
        return None, finished


def skip_identical_pairs(path: Path, pairs: Sequence[PreferencePair]) -> tuple[list[PreferencePair], int]:
    """The pairs to judge and how many identical ones were skipped (with a warning)."""
    pairs, identical = split_identical(pairs)
    if identical:
        ids = [p.id for p in identical]
        print(f"writing-rl: warning: skipped {len(ids)} pair(s) whose chosen and rejected texts are identical "
              f"(they measure nothing): ids {ids[:10]}{' ...' if len(ids) > 10 else ''}", file=sys.stderr)
    if not pairs:
        raise DataError(f"{path}: no pair left to judge (every chosen text equals its rejected text)")
    return pairs, len(identical)


def format_summary(summary: dict[str, Any], title: str) -> str:
    width = max(len(k) for k in summary)
    lines = [title, "-" * (width + 12)]
    for key, value in summary.items():
        text = f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)
        lines.append(f"{key.ljust(width)}  {text.rjust(9)}")
    return "\n".join(lines)
