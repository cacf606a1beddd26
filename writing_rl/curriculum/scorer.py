"""Writing-RL scoring: each rollout against its prompt's current reference, groups feeding the curriculum.

Plain asyncio (no Ray, no verl): the coordinator actor wraps one of these. The rung of a group is fixed
when its first rollout arrives; each rollout is judged at once; when the group is complete (or times
out) the promotion rule is applied once and the index file is written. Validation never touches it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from writing_rl.curriculum.schedule import Curriculum
from writing_rl.finished_groups import FinishedGroups
from writing_rl.judge.pairwise import Comparison, PairwiseJudge
from writing_rl.judge.parsing import Verdict
from writing_rl.rollout import RolloutSample

logger = logging.getLogger(__name__)
POSITIONS = ("position-disadvantage", "position-advantage", "both", "random")


@dataclass(frozen=True)
class RewardValues:
    win: float = 1.0
    tie: float = 0.5
    loss: float = 0.0


@dataclass
class _Group:
    prompt_id: str
    rung: int
    expected: int
    global_step: int | None = None
    judged: int = 0
    wins: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass
class WritingStats:
    outcomes: Counter = field(default_factory=Counter)
    parse_failures: int = 0
    groups: int = 0
    promotions: int = 0
    mastered_events: int = 0
    timed_out_groups: int = 0


def _policy_result(comparison: Comparison, policy_first: bool) -> str:
    if comparison.failed:
        return "failure"
    verdict = comparison.verdict
    if verdict is None:
        return "loss"  # an unparseable judgement never profits the policy
    if verdict == Verdict.TIE:
        return "tie"
    return "win" if (verdict == Verdict.A) == policy_first else "loss"


def combine(results: list[str]) -> str:
    """One order: its result. Both orders: a win (or loss) must hold in both, anything else is a tie."""
    if "failure" in results:
        return "failure"
    if all(r == "win" for r in results):
        return "win"
    if all(r == "loss" for r in results):
        return "loss"
    return "tie"


class WritingRLScorer:
    def __init__(self, judge: PairwiseJudge, curriculum: Curriculum, *, position: str, rewards: RewardValues,
                 seed: int, group_timeout_s: float, groups_per_step: int):
        if position not in POSITIONS:
            raise ValueError(f"position strategy {position!r}: use one of {POSITIONS}")
        self.judge, self.curriculum = judge, curriculum
        self.position, self.rewards, self.seed = position, rewards, seed
        self.group_timeout_s = group_timeout_s
        self.groups_per_step = max(1, groups_per_step)
        self.stats = WritingStats()
        self._groups: dict[str, _Group] = {}
        self._finished: FinishedGroups[int] = FinishedGroups()
        self.edit_problems: list[str] = []

    def _orders(self, sample: RolloutSample) -> list[bool]:
        """policy_first flags, one per judge call."""
        if self.position == "position-disadvantage":
            return [False]
        if self.position == "position-advantage":
            return [True]
        if self.position == "both":
            return [True, False]
        digest = hashlib.sha256(f"{self.seed}:{sample.uid}:{sample.session_id}".encode()).digest()
        return [digest[0] % 2 == 0]

    async def submit(self, sample: RolloutSample, expected: int) -> dict[str, Any]:
        problem = self.curriculum.pick_up_edits()
        if problem:
            self.edit_problems.append(problem)
        if sample.validation:
            return await self._judge(sample, self.curriculum.state.get(sample.prompt_id, 0), validation=True)
        finished_rung = self._finished.get(sample.uid)
        if finished_rung is not None:  # a straggler after its group timed out: scored, but promotes nothing
            logger.warning("rollout %s/%s arrived after its group was closed", sample.uid, sample.session_id)
            return await self._judge(sample, finished_rung, validation=False)
        group = self._groups.get(sample.uid)
        if group is None:
            group = self._groups[sample.uid] = _Group(sample.prompt_id, self.curriculum.rung(sample.prompt_id),
                                                      max(1, expected), sample.global_step)
            group.timer = asyncio.get_running_loop().call_later(self.group_timeout_s, self._finish, sample.uid, True)
        result = await self._judge(sample, group.rung, validation=False)
        group.judged += 1
        group.wins += result["extra"]["wrl_verdict"] == "win"
        if group.judged >= group.expected:
            self._finish(sample.uid, False)
        return result

    def _finish(self, uid: str, timed_out: bool) -> None:
        group = self._groups.pop(uid, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        self._finished.add(uid, group.rung)
        if timed_out:
            self.stats.timed_out_groups += 1
            logger.warning("group %s (prompt %s) timed out with %d of %d rollouts judged", uid, group.prompt_id,
                           group.judged, group.expected)
        self.stats.groups += 1
        # verl's own step (it survives a resume); counting groups is the fallback outside verl's trainer
        step = group.global_step if group.global_step is not None else (
            (self.stats.groups - 1) // self.groups_per_step + 1)
        record = self.curriculum.record_group(group.prompt_id, group.rung, group.wins, group.judged, step)
        if record is not None:
            self.stats.mastered_events += bool(record.get("mastered"))
            self.stats.promotions += not record.get("mastered")
        # the step's last group writes at once (the file is exact when its rewards return); others coalesce
        self.curriculum.save(force=self.stats.groups % self.groups_per_step == 0)

    async def _judge(self, sample: RolloutSample, rung: int, validation: bool) -> dict[str, Any]:
        if not sample.references:
            raise ValueError(f"prompt {sample.prompt_id}: ground_truth.target has no reference to compare with")
        reference = sample.references[min(rung, len(sample.references) - 1)]
        orders = self._orders(sample)
        comparisons = await asyncio.gather(*(
            self.judge.compare(sample.prompt, *((sample.response, reference) if policy_first else
                                                (reference, sample.response)), criteria=sample.criteria)
            for policy_first in orders))
        outcome = combine([_policy_result(c, p) for c, p in zip(comparisons, orders, strict=True)])
        parse_failed = any(c.unparseable for c in comparisons)
        if not validation:
            self.stats.outcomes[outcome] += 1
            self.stats.parse_failures += parse_failed
        reward = {"win": self.rewards.win, "tie": self.rewards.tie, "loss": self.rewards.loss,
                  "failure": self.rewards.tie}[outcome]
        position = "both" if len(orders) == 2 else ("policy_first" if orders[0] else "reference_first")
        return {"reward": float(reward), "extra": {
            "wrl_verdict": outcome,
            "wrl_rung": int(rung),
            "wrl_position": position,
            "wrl_failed": outcome == "failure",
            "wrl_parse_failed": bool(parse_failed),
            "wrl_validation": bool(validation),
            "judge_latency_s": float(max(c.latency_s for c in comparisons)),
            "judge_tokens": int(sum(c.tokens for c in comparisons)),
        }}

    def snapshot(self) -> dict[str, Any]:
        c = self.curriculum
        return {"outcomes": dict(self.stats.outcomes), "parse_failures": self.stats.parse_failures,
                "groups": self.stats.groups, "promotions": self.stats.promotions,
                "mastered_events": self.stats.mastered_events, "timed_out_groups": self.stats.timed_out_groups,
                "mean_rung": c.mean_rung(), "mastered": len(c.mastered), "prompts": len(c.state),
                "edits_adopted": c.edits_adopted, "edits_rejected": c.edits_rejected,
                "edits_stale_kept": c.edits_stale_kept}
