"""One named async Ray actor per job that owns the judge client and the cross-sample state.

verl scores each rollout alone, in one of `reward.num_workers` processes picked at random, so
the judge's job-wide limits and BRPO's groups live here: every reward worker sends its sample
and awaits the answer. A future shard-by-uid split only needs a different `coordinator_name`.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import ray

from writing_rl.brpo.scorer import BrpoGroupScorer
from writing_rl.curriculum.index_file import index_path
from writing_rl.curriculum.ladders import ladder_lengths
from writing_rl.curriculum.schedule import Curriculum, PromotionRule
from writing_rl.curriculum.scorer import RewardValues, WritingRLScorer
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.prompts import load_template
from writing_rl.rollout import RolloutSample
from writing_rl.verl_glue.metrics import step_metrics
from writing_rl.verl_glue.settings import RewardSettings

logger = logging.getLogger(__name__)
MAX_PENDING_CALLS = 100_000


class JudgeCoordinator:
    def __init__(self, settings: dict[str, Any]):
        self.settings = RewardSettings.from_dict(settings)
        self._client: JudgeClient | None = None
        self._brpo: BrpoGroupScorer | None = None
        self._writing: WritingRLScorer | None = None
        self._last_stats: dict[str, Any] = {"judge": {}}
        self._latency_mark = 0
        gc.freeze()  # start-up objects out of the collector's way: no long pauses in the event loop

    def _judge_client(self) -> JudgeClient:
        if self._client is None:
            self._client = JudgeClient(self.settings.judge)
        return self._client

    def _brpo_scorer(self) -> BrpoGroupScorer:
        if self._brpo is None:
            b = self.settings.brpo
            judge = PairwiseJudge(self._judge_client(), load_template(b.template, expect_output="scores"))
            self._brpo = BrpoGroupScorer(judge, orders=b.orders, votes=b.votes, seed=b.seed,
                                         group_timeout_s=b.group_timeout_s)
        return self._brpo

    def _writing_scorer(self) -> WritingRLScorer:
        if self._writing is None:
            w = self.settings.writing_rl
            judge = PairwiseJudge(self._judge_client(), load_template(w.template, expect_output="verdict"),
                                  load_template(w.criteria_template, expect_output="verdict"))
            curriculum = Curriculum(self.index_path(), ladder_lengths(self.settings.train_files),
                                    PromotionRule.parse(w.promotion))
            self._writing = WritingRLScorer(
                judge, curriculum, position=w.position, rewards=RewardValues(w.reward_win, w.reward_tie, w.reward_loss),
                seed=w.seed, group_timeout_s=w.group_timeout_s, groups_per_step=self.settings.train_batch_size)
        return self._writing

    def index_path(self) -> str:
        return str(index_path(self.settings.writing_rl.run_dir, self.settings.experiment))

    async def score_writing(self, sample: dict[str, Any]) -> dict[str, Any]:
        rollout = RolloutSample.from_dict(sample)
        expected = self.settings.val_n if rollout.validation else self.settings.rollout_n
        return await self._writing_scorer().submit(rollout, expected)

    async def save_index(self) -> str:
        """Write the index now (the trainer calls this before snapshotting it into a checkpoint)."""
        if self._writing is not None:
            self._writing.curriculum.save(force=True)
        return self.index_path()

    async def reload_index(self) -> None:
        """Forget the in-memory curriculum; the next judgement reads the file again (after a restore)."""
        self._writing = None

    async def score_brpo(self, sample: dict[str, Any]) -> dict[str, Any]:
        rollout = RolloutSample.from_dict(sample)
        expected = self.settings.brpo.group_size or (
            self.settings.val_n if rollout.validation else self.settings.rollout_n)
        return await self._brpo_scorer().submit(rollout, expected)

    async def stats(self) -> dict[str, Any]:
        """Judge usage and BRPO counters so far (for metrics and tests)."""
        out: dict[str, Any] = {"judge": self._client.usage.snapshot() if self._client else {}}
        if self._writing is not None:
            out["writing_rl"] = self._writing.snapshot()
        if self._brpo is not None:
            out["brpo"] = {**vars(self._brpo.stats), "judge_started_at": list(self._brpo.stats.judge_started_at)}
        return out

    async def step_metrics(self) -> dict[str, float]:
        """Metrics since the previous call, named for verl's logger (console, wandb). Called once per
        step by the trainer, it also writes the index, so the file is rewritten at least once per step."""
        if self._writing is not None:
            self._writing.curriculum.save(force=True)
        current = await self.stats()
        metrics = step_metrics(self._last_stats, current, self._client.usage.latencies_s[self._latency_mark:]
                               if self._client else [])
        self._last_stats = current
        self._latency_mark = len(self._client.usage.latencies_s) if self._client else 0
        return metrics

    async def drain(self) -> None:
        if self._brpo is not None:
            await self._brpo.drain()


def get_coordinator(settings: RewardSettings) -> ray.actor.ActorHandle:
    """The job's coordinator, created by whichever reward worker asks first."""
    actor = ray.remote(JudgeCoordinator).options(
        name=settings.coordinator_name(), get_if_exists=True, num_cpus=0,
        max_concurrency=MAX_PENDING_CALLS,
    )
    return actor.remote(settings.to_dict())
