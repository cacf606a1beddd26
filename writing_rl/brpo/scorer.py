"""Gather each BRPO group as its rollouts arrive, judge them as they come, answer every member once all are in.

Plain asyncio (no Ray, no verl): the coordinator actor wraps one of these. The group's reference is known
from (seed, uid) before any rollout arrives, so each candidate is judged as soon as it and the reference are
both in: a group's judge calls spread over its generation instead of queueing behind its last rollout. A
group that stays incomplete for `group_timeout_s` is judged with what arrived; a member arriving after its
group was judged gets no signal (0, flagged). Nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from writing_rl.brpo.group import NO_SIGNAL, MemberOutcome, choose_reference
from writing_rl.brpo.judging import judge_against_reference, judge_candidate
from writing_rl.brpo.skew import group_is_skewed
from writing_rl.finished_groups import FinishedGroups
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.rollout import RolloutSample

logger = logging.getLogger(__name__)


class DuplicateSessionError(ValueError):
    """Two rollouts of one group claimed the same session_id; the second is refused, the first keeps its place."""


@dataclass
class _Group:
    expected: int
    first: RolloutSample
    likely_reference: int
    """The reference drawn for sessions 0..expected-1 (how verl numbers a prompt's rollouts)."""
    members: dict[int, tuple[RolloutSample, asyncio.Future]] = field(default_factory=dict)
    arrivals: int = 0
    """Rollouts that reached the group, duplicates included: the group closes when this reaches `expected`."""
    numbered: bool = True
    """Every session_id so far is in 0..expected-1, so `likely_reference` is the one the group keeps."""
    early: dict[int, asyncio.Task[MemberOutcome]] = field(default_factory=dict)
    """Candidates already being judged against `likely_reference`, by session_id."""
    timer: asyncio.TimerHandle | None = None
    first_arrival: float = field(default_factory=time.monotonic)
    judging: bool = False

    def reference(self, uid: str, seed: int) -> int:
        """`likely_reference` when it arrived and the sessions are numbered 0..expected-1, else a uniform draw
        from the members that arrived. For a complete group this is `choose_reference` of its members; a group
        that timed out keeps the reference its candidates were already judged against."""
        if self.numbered and self.likely_reference in self.members:
            return self.likely_reference
        return choose_reference(list(self.members), uid, seed)


@dataclass
class BrpoStats:
    groups: int = 0
    skewed_groups: int = 0
    timed_out_groups: int = 0
    compared: int = 0
    wins: int = 0
    failures: int = 0
    unparsed: int = 0
    """Members with a judgement whose verdict could not be parsed (reward -1, like a loss; counted apart so a
    judge or prompt file that stops answering in format shows in the metrics, not only as a lower win rate)."""
    consistent: int = 0
    late_members: int = 0
    duplicate_sessions: int = 0
    discarded_judgements: int = 0
    """Candidates judged early against a reference their group did not keep (session_ids outside
    0..n-1): paid judge calls that gave no reward."""
    judge_started_at: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """When the most recent groups started being judged (bounded)."""
    closed_to_answered_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """For the most recent groups (bounded): seconds from the group closing (its last rollout in, or its timeout)
    to every member's reward: what the reward path adds after generation."""


class BrpoGroupScorer:
    def __init__(self, judge: PairwiseJudge, *, orders: str, votes: int, seed: int, group_timeout_s: float,
                 skew_threshold: float = 0.6):
        self.judge = judge
        self.orders, self.votes, self.seed = orders, votes, seed
        self.group_timeout_s = group_timeout_s
        self.skew_threshold = skew_threshold
        self.stats = BrpoStats()
        self.val_stats = BrpoStats()
        """Validation groups (of one, against the dataset's reference) are counted apart from training."""
        self._groups: dict[str, _Group] = {}
        self._finished: FinishedGroups[bool] = FinishedGroups()
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, sample: RolloutSample, expected: int) -> dict[str, Any]:
        """Wait for the member's reward: {"reward": float, "extra": {...}}.

        A second rollout with a session_id already in its group is refused (DuplicateSessionError) and counts
        towards the group's size, so the group still closes on time and no member's pending reward is lost."""
        if sample.uid in self._finished:
            self.stats.late_members += 1
            logger.warning("rollout %s/%s arrived after its group was judged; no signal", sample.uid,
                           sample.session_id)
            return _result(MemberOutcome(NO_SIGNAL, failed=True), group_size=0, reference=-1, skewed=False)
        loop = asyncio.get_running_loop()
        group = self._groups.get(sample.uid)
        if group is None:
            expected = max(1, expected)
            group = self._groups[sample.uid] = _Group(
                expected=expected, first=sample, likely_reference=choose_reference(range(expected), sample.uid,
                                                                                   self.seed))
            group.timer = loop.call_later(self.group_timeout_s, self._start, sample.uid, True)
        group.arrivals += 1
        duplicate = sample.session_id in group.members
        if not duplicate:
            future: asyncio.Future = loop.create_future()
            group.members[sample.session_id] = (sample, future)
            group.numbered = group.numbered and 0 <= sample.session_id < group.expected
            self._judge_early(group, sample.session_id)
        if group.arrivals >= group.expected:
            self._start(sample.uid, False)
        if duplicate:
            self.stats.duplicate_sessions += 1
            raise DuplicateSessionError(
                f"group {sample.uid}: session_id {sample.session_id} arrived twice; the first keeps its place and "
                "this one gets no reward. verl's V1 trainer numbers a prompt's n sessions 0..n-1; anything that "
                "re-sends a session (a custom agent loop, a retried request) must give it a fresh session_id")
        return await future

    def _judge_early(self, group: _Group, session_id: int) -> None:
        """Start judging what can be judged now: the new member against the likely reference, or, when the new
        member is that reference, every member already in."""
        reference_id = group.likely_reference
        if not group.numbered or reference_id not in group.members:
            return
        waiting = [s for s in group.members if s != reference_id] if session_id == reference_id else [session_id]
        for candidate in waiting:
            group.early[candidate] = self._judge_task(group, candidate, reference_id)

    def _judge_task(self, group: _Group, candidate: int, reference_id: int) -> asyncio.Task[MemberOutcome]:
        self._mark_judging(group)
        first = group.first
        return asyncio.create_task(judge_candidate(
            self.judge, first.prompt, group.members[candidate][0].response, group.members[reference_id][0].response,
            orders=self.orders, votes=self.votes, criteria=first.criteria))

    def _mark_judging(self, group: _Group) -> None:
        if not group.judging:
            group.judging = True
            self.stats.judge_started_at.append(time.time())

    def _start(self, uid: str, timed_out: bool) -> None:
        group = self._groups.pop(uid, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        if timed_out:
            self.stats.timed_out_groups += 1
            logger.warning("group %s timed out with %d of %d rollouts; judging what arrived", uid,
                           len(group.members), group.expected)
        self._finished.add(uid, True)
        task = asyncio.create_task(self._judge(uid, group, time.monotonic()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge(self, uid: str, group: _Group, closed_at: float) -> None:
        self._mark_judging(group)
        members = group.members
        try:
            if len(members) == 1:
                results = await self._judge_single(next(iter(members.values()))[0])
            else:
                results = await self._judge_bootstrapped(uid, group)
        except Exception:  # never leave a reward worker waiting
            logger.exception("judging group %s failed; its members get no signal", uid)
            results = {s: _result(MemberOutcome(NO_SIGNAL, failed=True), len(members), -1, False) for s in members}
        for session_id, (_, future) in members.items():
            if not future.done():
                future.set_result(results[session_id])
        self.stats.closed_to_answered_s.append(time.monotonic() - closed_at)

    async def _judge_bootstrapped(self, uid: str, group: _Group) -> dict[int, dict[str, Any]]:
        members = group.members
        reference_id = group.reference(uid, self.seed)
        if reference_id != group.likely_reference and group.early:
            self.stats.discarded_judgements += len(group.early)
            for task in group.early.values():
                _discard(task)
            group.early.clear()
        tasks = {s: group.early.get(s) or self._judge_task(group, s, reference_id) for s in members
                 if s != reference_id}
        outcomes = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))
        outcomes[reference_id] = MemberOutcome(0.0, is_reference=True)
        skewed = group_is_skewed([o.reward for o in outcomes.values()], self.skew_threshold)
        self._count(outcomes.values(), skewed, group.first.validation)
        return {s: _result(o, len(members), reference_id, skewed) for s, o in outcomes.items()}

    async def _judge_single(self, sample: RolloutSample) -> dict[int, dict[str, Any]]:
        """A group of one (validation): against the dataset's strongest reference if any, else 0."""
        if not sample.references:
            return {sample.session_id: _result(MemberOutcome(NO_SIGNAL), 1, -1, False)}
        outcomes = await judge_against_reference(self.judge, sample.prompt, {sample.session_id: sample.response},
                                                 sample.references[-1], orders=self.orders, votes=self.votes,
                                                 criteria=sample.criteria)
        self._count(outcomes.values(), False, sample.validation)
        return {sample.session_id: _result(outcomes[sample.session_id], 1, -1, False)}

    def _count(self, outcomes: Any, skewed: bool, validation: bool) -> None:
        stats = self.val_stats if validation else self.stats
        stats.groups += 1
        stats.skewed_groups += skewed
        for outcome in outcomes:
            if outcome.is_reference:
                continue
            stats.compared += 1
            stats.wins += outcome.reward > 0
            stats.failures += outcome.failed
            stats.unparsed += not outcome.failed and any(v.comparison.verdict is None for v in outcome.votes)
            stats.consistent += outcome.consistent

    async def drain(self) -> None:
        """Wait for every group being judged (used at shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


def _discard(task: asyncio.Task) -> None:
    """Stop a judgement nobody will read, and take its outcome so asyncio does not report it as lost."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _result(outcome: MemberOutcome, group_size: int, reference: int, skewed: bool) -> dict[str, Any]:
    by_order: dict[str, list[str]] = {"candidate_first": [], "candidate_second": []}
    scores: list[str] = []
    latency, tokens = 0.0, 0
    for vote in outcome.votes:
        c = vote.comparison
        by_order[vote.order].append(c.verdict.value if c.verdict else ("failed" if c.failed else "unparsed"))
        if c.scores:
            scores.append(f"{c.scores[0]:g}/{c.scores[1]:g}")
        latency = max(latency, c.latency_s)
        tokens += c.tokens
    return {
        "reward": float(outcome.reward),
        "extra": {
            "brpo_is_reference": bool(outcome.is_reference),
            "brpo_failed": bool(outcome.failed),
            "brpo_verdicts_candidate_first": ",".join(by_order["candidate_first"]),
            "brpo_verdicts_candidate_second": ",".join(by_order["candidate_second"]),
            "brpo_scores": ";".join(scores),
            "brpo_consistent": bool(outcome.consistent),
            "brpo_group_size": int(group_size),
            "brpo_reference_session": int(reference),
            "brpo_group_skewed": bool(skewed),
            "judge_latency_s": float(latency),
            "judge_tokens": int(tokens),
        },
    }
