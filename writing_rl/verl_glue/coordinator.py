"""One named async Ray actor per job that owns the judge client and the cross-sample state.

verl scores each rollout alone, in one of `reward.num_workers` processes picked at random, so
the judge's job-wide limits and BRPO's groups live here: every reward worker sends its samples
(in batches, through `CoordinatorLink`) and collects the answers. A future shard-by-uid split only
needs a different `coordinator_name`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import ray

from writing_rl.brpo.scorer import BrpoGroupScorer
from writing_rl.curriculum.checkpoint import IndexSnapshot
from writing_rl.curriculum.ladders import ladder_lengths
from writing_rl.curriculum.schedule import Curriculum, PromotionRule
from writing_rl.curriculum.scorer import RewardValues, WritingRLScorer
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.prompts import load_template
from writing_rl.rollout import RolloutSample
from writing_rl.verl_glue.metrics import brpo_val_metrics, step_metrics
from writing_rl.verl_glue.reward_inboxes import Answer, RewardInboxes
from writing_rl.verl_glue.router_client import HostedJudge
from writing_rl.verl_glue.settings import RewardSettings
from writing_rl.watch import RewardHackingWatch

logger = logging.getLogger(__name__)
MAX_PENDING_CALLS = 100_000


class CoordinatorLostError(RuntimeError):
    """The job's coordinator actor is gone; rewards cannot be computed until the job is restarted."""

    @classmethod
    def from_ray(cls, settings: RewardSettings, exc: BaseException) -> CoordinatorLostError:
        return cls(f"the writing-rl coordinator {settings.coordinator_name()!r} is gone, so no reward can be "
                   f"computed ({type(exc).__name__}: {exc}). Look in the Ray logs for why it died (often memory); "
                   "restart the job to resume from the last checkpoint")


class JudgeCoordinator:
    def __init__(self, settings: dict[str, Any]):
        self.settings = RewardSettings.from_dict(settings)
        self._client: JudgeClient | None = None
        self._hosted = HostedJudge(self.settings.judge) if self.settings.judge_backend == "verl" else None
        self._brpo: BrpoGroupScorer | None = None
        self._writing: WritingRLScorer | None = None
        self._last_stats: dict[str, Any] = {"judge": {}}
        self._latency_mark = 0
        self._validating = False
        self._val_start: dict[str, Any] = {"judge": {}}
        self._val_latency_mark = 0
        self._watch = RewardHackingWatch(self.settings.watch)
        self._inboxes = RewardInboxes()
        self._answering: set[asyncio.Task] = set()
        self._batches = {"submit_calls": 0, "rollouts": 0, "collect_calls": 0}
        """How many rollouts came in how many calls: the batching `CoordinatorLink` exists for."""
        gc.freeze()  # start-up objects out of the collector's way: no long pauses in the event loop

    def _judge_client(self) -> JudgeClient:
        if self._client is None:
            self._client = self._hosted.client() if self._hosted else JudgeClient(self.settings.judge)
        return self._client

    async def attach_verl_router(self, address: str) -> None:
        """judge_backend=verl: each reward worker passes on the router address verl gave it."""
        if self._hosted is None:
            raise ValueError("attach_verl_router is for reward.reward_kwargs.judge_backend=verl")
        self._hosted.attach(address)

    async def _judge_ready(self) -> None:
        """judge_backend=verl: the router serves our model, checked once; a failure fails every reward call."""
        if self._hosted is not None:
            await self._hosted.ready()

    def _brpo_scorer(self) -> BrpoGroupScorer:
        if self._brpo is None:
            b = self.settings.brpo
            judge = PairwiseJudge(self._judge_client(), load_template(b.template, expect_output="scores"))
            self._brpo = BrpoGroupScorer(judge, orders=b.orders, votes=b.votes, seed=b.seed,
                                         group_timeout_s=b.group_timeout_s,
                                         skew_threshold=self.settings.skew_threshold)
        return self._brpo

    def _writing_scorer(self) -> WritingRLScorer:
        if self._writing is None:
            w = self.settings.writing_rl
            judge = PairwiseJudge(self._judge_client(), load_template(w.template, expect_output="verdict"),
                                  load_template(w.criteria_template, expect_output="verdict"))
            curriculum = Curriculum(self.settings.index_path(), ladder_lengths(self.settings.train_files),
                                    PromotionRule.parse(w.promotion))
            self._writing = WritingRLScorer(
                judge, curriculum, position=w.position, rewards=RewardValues(w.reward_win, w.reward_tie, w.reward_loss),
                seed=w.seed, group_timeout_s=w.group_timeout_s, groups_per_step=self.settings.train_batch_size)
        return self._writing

    def _rollout(self, sample: dict[str, Any]) -> RolloutSample:
        """The sample, marked as validation while the trainer validates (verl tells reward managers nothing)."""
        rollout = RolloutSample.from_dict(sample)
        return replace(rollout, validation=True) if self._validating and not rollout.validation else rollout

    def _watched(self, rollout: RolloutSample, result: dict[str, Any]) -> dict[str, Any]:
        """Feed a training rollout to the reward-hacking watch; a failed judgement or BRPO's reference carries
        no reward signal to correlate with length."""
        if not rollout.validation:
            extra = result.get("extra", {})
            no_signal = extra.get("wrl_failed") or extra.get("brpo_failed") or extra.get("brpo_is_reference")
            self._watch.observe(rollout.uid, rollout.response, None if no_signal else result["reward"])
        return result

    async def submit(self, inbox: str, method: str, items: list[tuple[int, dict[str, Any]]]) -> None:
        """Start scoring a reward worker's batch of (ticket, sample); `collect(inbox)` hands the answers back.
        Returns at once: the worker sends its next batch while this one is judged."""
        score = {"writing_rl": self._score_writing, "brpo": self._score_brpo}[method]
        self._batches["submit_calls"] += 1
        self._batches["rollouts"] += len(items)
        for ticket, sample in items:
            task = asyncio.create_task(self._answer(inbox, ticket, score, sample))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def collect(self, inbox: str) -> list[Answer]:
        """Every (ticket, result, error) ready for this reward worker, waiting for the first if none is."""
        answers = await self._inboxes.take(inbox)
        self._batches["collect_calls"] += 1
        return answers

    async def _answer(self, inbox: str, ticket: int, score: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
                      sample: dict[str, Any]) -> None:
        try:
            result = await score(sample)
        except Exception as exc:  # the rollout's reward worker raises it, as a direct call would
            self._inboxes.put(inbox, ticket, None, exc)
        else:
            self._inboxes.put(inbox, ticket, result, None)

    async def _score_writing(self, sample: dict[str, Any]) -> dict[str, Any]:
        await self._judge_ready()
        rollout = self._rollout(sample)
        expected = self.settings.val_n if rollout.validation else self.settings.rollout_n
        return self._watched(rollout, await self._writing_scorer().submit(rollout, expected))

    async def _score_brpo(self, sample: dict[str, Any]) -> dict[str, Any]:
        await self._judge_ready()
        rollout = self._rollout(sample)
        expected = self.settings.val_n if rollout.validation else (
            self.settings.brpo.group_size or self.settings.rollout_n)
        return self._watched(rollout, await self._brpo_scorer().submit(rollout, expected))

    async def save_index(self) -> IndexSnapshot | None:
        """Write the index now and return it with its history as text: the trainer, possibly on another node,
        puts it into the checkpoint. None when this job has no index (BRPO)."""
        if self._writing is not None:
            self._writing.curriculum.save(force=True)
        if self.settings.method != "writing_rl":
            return None
        return IndexSnapshot.read(self.settings.index_path())

    async def restore_index(self, snapshot: IndexSnapshot) -> None:
        """Put a checkpoint's index back (on this node) and read it again at the next judgement."""
        if self._writing is not None:
            self._writing.curriculum.close()  # no write of the old curriculum may land after the restore
        snapshot.restore_to(self.settings.index_path())
        self._writing = None

    async def begin_validation(self) -> None:
        """From now until `end_validation`, every rollout is a validation rollout (no curriculum change)."""
        self._validating = True
        self._val_start = await self.stats()
        self._val_latency_mark = self._latency_total()

    async def end_validation(self) -> dict[str, float]:
        """Validation's own judge usage as `val-judge/*` (and `val-brpo/*`), kept out of the next training step."""
        self._validating = False
        current = await self.stats()
        metrics = step_metrics({"judge": self._val_start["judge"]}, {"judge": current["judge"]},
                               self._latencies_since(self._val_latency_mark))
        out = {f"val-{key}": value for key, value in metrics.items()}
        if "brpo_val" in current:
            out.update(brpo_val_metrics(self._val_start.get("brpo_val", {}), current["brpo_val"]))
        # the sync trainer validates after the step's metrics were taken: what was judged since is validation
        self._last_stats = current
        self._latency_mark = self._latency_total()
        return out

    def _latency_total(self) -> int:
        """How many judge latencies were ever recorded: a mark for `_latencies_since`."""
        return self._client.usage.latencies_s.total if self._client else 0

    def _latencies_since(self, mark: int) -> list[float]:
        return self._client.usage.latencies_s.since(mark) if self._client else []

    async def stats(self) -> dict[str, Any]:
        """Judge usage and method counters so far (for metrics and tests)."""
        out: dict[str, Any] = {"judge": self._client.usage.snapshot() if self._client else {},
                               "batches": dict(self._batches)}
        if self._writing is not None:
            out["writing_rl"] = self._writing.snapshot()
        if self._brpo is not None:
            stats = vars(self._brpo.stats)
            out["brpo"] = {k: list(v) if isinstance(v, deque) else v for k, v in stats.items()}
            out["brpo_val"] = {k: v for k, v in vars(self._brpo.val_stats).items() if not isinstance(v, deque)}
        return out

    async def step_metrics(self) -> dict[str, float]:
        """Metrics since the previous call, named for verl's logger (console, wandb). Called once per
        step by the trainer, it also writes the index, so the file is rewritten at least once per step."""
        if self._writing is not None:
            self._writing.curriculum.save(force=True)
        current = await self.stats()
        metrics = step_metrics(self._last_stats, current, self._latencies_since(self._latency_mark))
        metrics.update(self._watch.step_metrics())
        self._last_stats = current
        self._latency_mark = self._latency_total()
        return metrics

    async def drain(self) -> None:
        if self._brpo is not None:
            await self._brpo.drain()


def get_coordinator(settings: RewardSettings) -> ray.actor.ActorHandle:
    """The job's coordinator. Trainer mode `writing_rl` creates it first, from verl's TaskRunner, so it lives
    as long as the job (a Ray actor dies with the process that created it); outside verl's trainer (tests,
    demos) the first reward worker that asks creates it."""
    actor = ray.remote(JudgeCoordinator).options(
        name=settings.coordinator_name(), get_if_exists=True, num_cpus=0,
        max_concurrency=MAX_PENDING_CALLS,
    )
    return actor.remote(settings.to_dict())
