"""A reward worker's line to the job's coordinator: rollouts go over in batches, rewards come back in batches.

A Ray actor call costs about a millisecond of CPU between caller and callee, as much as the rest of a
rollout's reward path, so one call per rollout would make the coordinator hop set the job's reward
throughput. Here each reward worker keeps at most one `submit` and one `collect` call in flight: rollouts
that arrive while a `submit` travels go in the next one, and one `collect` brings back every reward that
was ready. A lone rollout still goes over at once (a batch of one), so nothing waits for a batch to fill.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

from ray.exceptions import RayActorError

from writing_rl.verl_glue.coordinator import CoordinatorLostError
from writing_rl.verl_glue.settings import RewardSettings


class CoordinatorLink:
    """`await link.score(sample)` -> the coordinator's {"reward", "extra"} for it, or the error it raised."""

    def __init__(self, coordinator: Any, settings: RewardSettings, method: str):
        self._coordinator = coordinator
        self._settings = settings
        self._method = method
        self._inbox = uuid.uuid4().hex
        """The coordinator keeps this worker's rewards apart under this name until `collect` takes them."""
        self._tickets = itertools.count()
        self._outbox: list[tuple[int, dict[str, Any]]] = []
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._sender: asyncio.Task | None = None
        self._collector: asyncio.Task | None = None

    async def score(self, sample: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ticket = next(self._tickets)
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting[ticket] = future
        self._outbox.append((ticket, sample))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send())
        if self._collector is None or self._collector.done():
            self._collector = loop.create_task(self._collect())
        try:
            return await future
        finally:
            self._waiting.pop(ticket, None)

    async def _send(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._coordinator.submit.remote(self._inbox, self._method, batch)
            except Exception as exc:  # every rollout of the batch learns why, none waits forever
                self._fail([ticket for ticket, _ in batch], exc)

    async def _collect(self) -> None:
        while self._waiting:
            try:
                answers = await self._coordinator.collect.remote(self._inbox)
            except Exception as exc:  # no reward can come back: fail every waiting rollout
                self._fail(list(self._waiting), exc)
                return
            for ticket, result, error in answers:
                future = self._waiting.pop(ticket, None)
                if future is None or future.done():
                    continue  # its run_single was cancelled
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)

    def _fail(self, tickets: list[int], exc: BaseException) -> None:
        error = CoordinatorLostError.from_ray(self._settings, exc) if isinstance(exc, RayActorError) else exc
        for ticket in tickets:
            future = self._waiting.pop(ticket, None)
            if future is not None and not future.done():
                future.set_exception(error)
