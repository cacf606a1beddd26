"""The coordinator's side of `CoordinatorLink`: rewards wait here, per reward worker, until it collects them."""

from __future__ import annotations

import asyncio
import pickle
from collections import defaultdict
from typing import Any

Answer = tuple[int, dict[str, Any] | None, BaseException | None]
"""(ticket, result, error): exactly one of result and error is set."""


class RewardInboxes:
    def __init__(self) -> None:
        self._answers: dict[str, list[Answer]] = defaultdict(list)
        self._arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def put(self, inbox: str, ticket: int, result: dict[str, Any] | None, error: BaseException | None) -> None:
        self._answers[inbox].append((ticket, result, None if error is None else _portable(error)))
        self._arrived[inbox].set()

    async def take(self, inbox: str) -> list[Answer]:
        """Every answer waiting for this worker; waits for the first one if there is none yet."""
        arrived = self._arrived[inbox]
        await arrived.wait()
        arrived.clear()
        return self._answers.pop(inbox, [])


def _portable(error: BaseException) -> BaseException:
    """The error itself when it survives the trip to the reward worker, else a RuntimeError with its type and
    message (an exception whose __init__ takes other arguments than its message pickles but does not unpickle)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # any failure either way: send its description instead
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
