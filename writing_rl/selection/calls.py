"""Sending requests during a selection: per-endpoint limits, a graceful stop, and what every call cost.

Ctrl-C closes the `StopGate`: no request is started after it, while those already sent run to the end,
so their answers land in the endpoint's cache and a rerun of the same command never pays for them twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from writing_rl.judge.client import JudgeReply

T = TypeVar("T")


class Stopped(Exception):
    """The gate closed (Ctrl-C) before this request was sent."""


class StopGate:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class LimitedCalls:
    """At most `max_concurrency` requests of one endpoint in flight; none started once the gate closed.

    The client has the same limit inside; holding it here as well means a request waiting for a slot
    has not been sent yet, so the gate can still stop it.
    """

    def __init__(self, gate: StopGate, max_concurrency: int):
        self._gate = gate
        self._slots = asyncio.Semaphore(max_concurrency)

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        async with self._slots:
            if self._gate.closed:
                raise Stopped
            return await make()


@dataclass
class CallCounts:
    """Requests of one endpoint. Tokens count every answer this selection used, cached ones included;
    `paid_*` only those bought by this run."""

    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    paid_prompt_tokens: int = 0
    paid_completion_tokens: int = 0

    def add(self, reply: JudgeReply | None) -> None:
        self.calls += 1
        if reply is None:
            self.failed += 1
            return
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if reply.cached:
            self.cached += 1
        else:
            self.paid_prompt_tokens += reply.prompt_tokens
            self.paid_completion_tokens += reply.completion_tokens
