"""Gather each BRPO group as its rollouts arrive, judge it the moment it is complete, answer every member.

Plain asyncio (no Ray, no verl): the coordinator actor wraps one of these. A group that stays
incomplete for `group_timeout_s` is judged with what arrived; a member arriving after its group
was judged gets no signal (0, flagged). Nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from writing_rl.brpo.group import NO_SIGNAL, MemberOutcome, choose_reference
from writing_rl.brpo.judging import judge_against_reference
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
    members: dict[int, tuple[RolloutSample, asyncio.Future]] = field(default_factory=dict)
    arrivals: int = 0
    """Rollouts that reached the group, duplicates included: the group closes when this reaches `expected`."""
    timer: asyncio.TimerHandle | None = None
    first_arrival: float = field(default_factory=time.monotonic)


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
    judge_started_at: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """When the most recent groups started being judged (bounded)."""


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
            group = self._groups[sample.uid] = _Group(expected=max(1, expected), first=sample)
            group.timer = loop.call_later(self.group_timeout_s, self._start, sample.uid, True)
        group.arrivals += 1
        duplicate = sample.session_id in group.members
        if not duplicate:
            future: asyncio.Future = loop.create_future()
            group.members[sample.session_id] = (sample, future)
        if group.arrivals >= group.expected:
            self._start(sample.uid, False)
        if duplicate:
            self.stats.duplicate_sessions += 1
            raise DuplicateSessionError(
                f"group {sample.uid}: session_id {sample.session_id} arrived twice; the first keeps its place and "
                "this one gets no reward. verl's V1 trainer numbers a prompt's n sessions 0..n-1; anything that "
                "re-sends a session (a custom agent loop, a retried request) must give it a fresh session_id")
        return await future

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
        task = asyncio.create_task(self._judge(uid, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge(self, uid: str, group: _Group) -> None:
        self.stats.judge_started_at.append(time.time())
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

    async def _judge_bootstrapped(self, uid: str, group: _Group) -> dict[int, dict[str, Any]]:
        members = group.members
        reference_id = choose_reference(list(members), uid, self.seed)
        candidates = {s: sample.response for s, (sample, _) in members.items() if s != reference_id}
        first = group.first
        outcomes = await judge_against_reference(self.judge, first.prompt, candidates,
                                                 members[reference_id][0].response, orders=self.orders,
                                                 votes=self.votes, criteria=first.criteria)
        outcomes[reference_id] = MemberOutcome(0.0, is_reference=True)
        skewed = group_is_skewed([o.reward for o in outcomes.values()], self.skew_threshold)
        self._count(outcomes.values(), skewed, first.validation)
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
