"""The pairwise judge as the selection uses it: both orders per pair, limited, stoppable, counted."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from writing_rl.judge.pairwise import Comparison, PairwiseJudge
from writing_rl.selection.calls import CallCounts, LimitedCalls, StopGate
from writing_rl.selection.outcomes import Outcome, both_orders
from writing_rl.selection.prompts import SelectionPrompt


def raise_first_error(results: Sequence[object]) -> None:
    """After `gather(..., return_exceptions=True)`: every call has ended; now raise the first error, if any."""
    for result in results:
        if isinstance(result, BaseException):
            raise result


class PairJudge:
    def __init__(self, judge: PairwiseJudge, gate: StopGate):
        self.judge = judge
        self.counts = CallCounts()
        self.unparseable = 0
        self._limited = LimitedCalls(gate, judge.client.settings.max_concurrency)

    async def _compare(self, prompt: SelectionPrompt, a: str, b: str) -> Comparison:
        result = await self._limited.call(lambda: self.judge.compare(prompt.prompt, a, b, criteria=prompt.criteria))
        self.counts.add(result.reply)
        self.unparseable += result.unparseable
        return result

    async def outcome(self, prompt: SelectionPrompt, first: str, second: str) -> Outcome:
        """Who wins, `first` or `second`, judged in both presentation orders (both run to the end)."""
        results = await asyncio.gather(self._compare(prompt, first, second), self._compare(prompt, second, first),
                                       return_exceptions=True)
        raise_first_error(results)
        return both_orders(*results)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self.judge.aclose()
