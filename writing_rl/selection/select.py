"""The selection itself: generate, measure each prompt's margin, rank the candidates of the best prompts.

Phase 1, every prompt: the policy and the K candidates write a response; the policy's is judged against
each candidate in both orders (2K calls) -> the margin. Phase 2, in order of margin (largest first, input
order among equals), only prompts that can still be selected: the candidates are ranked round robin
(K(K-1) calls, fewer when an undecided pair ends it early) into a ladder; a prompt whose candidates cannot
be ordered is dropped and the next one by margin takes its place, until `top` prompts are kept. Prompts
that cannot make the cut are never ranked, so a selection pays far fewer judge calls than judging all K+1
responses against each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tqdm import tqdm

from writing_rl.selection.calls import Stopped
from writing_rl.selection.generation import GenerationFailed, Writer, generation_messages
from writing_rl.selection.ladder import LadderOrder, candidate_pairs, is_decided, order_candidates
from writing_rl.selection.margin import Margin, policy_margin
from writing_rl.selection.outcomes import Outcome
from writing_rl.selection.pair_judge import PairJudge, raise_first_error
from writing_rl.selection.prompts import SelectionPrompt

T = TypeVar("T")


class SelectionInterrupted(Exception):
    """Ctrl-C stopped the selection; what was answered is cached."""


@dataclass(frozen=True)
class PromptOutcome:
    prompt: SelectionPrompt
    texts: tuple[str, ...] | None = None
    """The policy's response, then each candidate's (endpoints file order)."""
    margin: Margin | None = None
    order: LadderOrder | None = None
    problem: str | None = None
    """Why the prompt cannot be selected: a generation or judge failure, candidates not orderable."""

    @property
    def ladder(self) -> list[str]:
        """The candidates' responses, weakest first."""
        assert self.texts is not None and self.order is not None and self.order.ladder is not None
        return [self.texts[1 + i] for i in self.order.ladder]


@dataclass(frozen=True)
class Selection:
    outcomes: list[PromptOutcome]
    """Every prompt, in input order (ranked ones with their ladder order)."""
    selected: list[PromptOutcome]
    """The kept prompts, largest margin first."""
    dropped: dict[str, str]
    """Every other prompt's id -> why it was not kept."""


class Selector:
    def __init__(self, writers: Sequence[Writer], judge: PairJudge, *, system_prompt: str | None,
                 progress: bool = True):
        self.policy, *self.candidates = writers
        self.judge = judge
        self.system_prompt = system_prompt
        self.progress = progress

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(w.endpoint.name for w in self.candidates)

    async def select(self, prompts: Sequence[SelectionPrompt], *, top: int | None, min_margin: float) -> Selection:
        measured = await self._each([self._measure(p) for p in prompts], "responses + margins")
        dropped: dict[str, str] = {}
        eligible = []
        for outcome in measured:
            reason = _not_eligible(outcome, min_margin)
            if reason:
                dropped[outcome.prompt.id] = reason
            else:
                eligible.append(outcome)
        eligible.sort(key=lambda o: -_margin(o))  # stable: file order among equal margins
        ranked = await self._rank_until_full(eligible, top)
        selected = [o for o in ranked if not o.problem]
        dropped.update({o.prompt.id: o.problem for o in ranked if o.problem})
        for outcome in eligible[len(ranked):]:
            dropped[outcome.prompt.id] = (f"not ranked: margin {_margin(outcome):g}; --top {top} was filled by "
                                          "prompts with larger margins (or earlier in the file at equal margin)")
        by_id = {o.prompt.id: o for o in ranked}
        outcomes = [by_id.get(o.prompt.id, o) for o in measured]
        return Selection(outcomes, selected, {o.prompt.id: dropped[o.prompt.id] for o in outcomes
                                              if o.prompt.id in dropped})

    async def _rank_until_full(self, eligible: list[PromptOutcome], top: int | None) -> list[PromptOutcome]:
        """Rank the eligible prompts in order, a round at a time, until `top` are orderable (or none is left).
        Each round ranks as many as places are still free, so no prompt is ranked that cannot be kept."""
        ranked: list[PromptOutcome] = []
        kept = 0
        while len(ranked) < len(eligible) and (top is None or kept < top):
            wanted = len(eligible) if top is None else top - kept
            batch = eligible[len(ranked):len(ranked) + wanted]
            results = await self._each([self._rank(o) for o in batch], "ranking candidates")
            ranked += results
            kept += sum(not o.problem for o in results)
        return ranked

    async def _measure(self, prompt: SelectionPrompt) -> PromptOutcome:
        messages = generation_messages(prompt.prompt, self.system_prompt)
        texts = await asyncio.gather(*(w.write(messages) for w in (self.policy, *self.candidates)),
                                     return_exceptions=True)
        failures = [str(t) for t in texts if isinstance(t, GenerationFailed)]
        raise_first_error([t for t in texts if not isinstance(t, GenerationFailed)])
        if failures:
            return PromptOutcome(prompt, problem="generation failed: " + "; ".join(failures))
        policy, *candidates = texts
        results = await asyncio.gather(*(self.judge.outcome(prompt, policy, c) for c in candidates),
                                       return_exceptions=True)
        raise_first_error(results)
        margin = policy_margin(results)  # type: ignore[arg-type]
        problem = None if margin.value is not None else "judge failed: on the policy-vs-candidate comparisons"
        return PromptOutcome(prompt, tuple(texts), margin, problem=problem)  # type: ignore[arg-type]

    async def _rank(self, outcome: PromptOutcome) -> PromptOutcome:
        """Round robin, one pair at a time (both orders at once), stopping at the first undecided pair."""
        assert outcome.texts is not None
        candidates = outcome.texts[1:]
        outcomes: dict[tuple[int, int], Outcome] = {}
        for i, j in candidate_pairs(len(candidates)):
            outcomes[(i, j)] = await self.judge.outcome(outcome.prompt, candidates[i], candidates[j])
            if not is_decided(outcomes[(i, j)]):
                break
        order = order_candidates(len(candidates), outcomes, self.names)
        return dataclasses.replace(outcome, order=order, problem=order.problem)

    async def _each(self, work: list[Awaitable[T]], description: str) -> list[T]:
        """Run every coroutine to its end, with a progress bar; Stopped anywhere -> SelectionInterrupted."""
        tasks = [asyncio.ensure_future(w) for w in work]
        stopped = False
        try:
            with tqdm(total=len(tasks), desc=description, unit="prompt", disable=not self.progress) as bar:
                for done in asyncio.as_completed(tasks):
                    try:
                        await done
                    except Stopped:
                        stopped = True
                    bar.update(1)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if stopped:
            raise SelectionInterrupted
        return [t.result() for t in tasks]


def _margin(outcome: PromptOutcome) -> float:
    assert outcome.margin is not None and outcome.margin.value is not None
    return outcome.margin.value


def _not_eligible(outcome: PromptOutcome, min_margin: float) -> str | None:
    """Why a measured prompt cannot be selected; every reason reads `<kind>: <detail>`."""
    if outcome.problem:
        return outcome.problem
    if _margin(outcome) == 0:
        return "no margin: no candidate beats the policy in both orders"
    if _margin(outcome) < min_margin:
        return f"below --min-margin: {_margin(outcome):g} < {min_margin:g}"
    return None
