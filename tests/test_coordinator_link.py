"""The batched line between verl's reward workers and the job's coordinator (real Ray, verl's real
RewardLoopWorker, the loopback judge): a burst travels in fewer calls than rollouts and every rollout still
gets its own reward; a coordinator that dies fails every waiting rollout with the reason instead of a hang;
an error reaches the rollout it belongs to, as itself or, when it cannot be unpickled, as its type and message."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from writing_rl.brpo.group import choose_reference
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data, send
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.verl_glue.reward_inboxes import RewardInboxes

G = 16


@pytest.fixture(scope="module")
def scores_server() -> Iterator[JudgeServerProcess]:
    with JudgeServerProcess(mode="scores") as server:
        yield server


def brpo_config(tokenizer_dir: str, server: JudgeServerProcess, experiment: str, *extra: str) -> Any:
    return reward_loop_config(tokenizer_dir, [
        "reward.reward_manager.name=brpo", f"actor_rollout_ref.rollout.n={G}",
        f"+reward.reward_kwargs.experiment={experiment}", f"+reward.reward_kwargs.judge.base_url={server.base_url}",
        "+reward.reward_kwargs.judge.model=test-judge", *extra])


def quality(session: int) -> float:
    return 1 + session / 2


def row(i: int) -> dict[str, Any]:
    return {"data_source": "writing", "prompt": [{"role": "user", "content": f"Write piece {i}."}],
            "reward_model": {"style": "rule", "ground_truth": {"prompt": f"Write piece {i}.", "target": None,
                                                               "criteria": None, "id": str(i)}},
            "extra_info": {"index": str(i), "split": "train"}}


def arrived_at_coordinator(experiment: str, rollouts: int) -> Any:
    """The job's coordinator once it holds this many rollouts; None before (the reward workers create it)."""
    try:
        coordinator = ray.get_actor(f"writing_rl_coordinator:{experiment}")
    except ValueError:
        return None
    return coordinator if ray.get(coordinator.stats.remote())["batches"]["rollouts"] >= rollouts else None


@pytest.mark.slow
def test_a_burst_travels_in_batches_and_each_rollout_gets_its_own_reward(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, scores_server: JudgeServerProcess) -> None:
    experiment = f"link-{uuid.uuid4().hex[:8]}"
    uids = [f"uid-{uuid.uuid4()}" for _ in range(4)]
    with reward_workers(brpo_config(tokenizer_dir, scores_server, experiment)) as workers:
        refs = {uid: [send(workers, rollout_data(tokenizer, row(p), f"text {s} QUALITY={quality(s):g}", uid, s))
                      for s in range(G)] for p, uid in enumerate(uids)}
        results = {uid: ray.get(r, timeout=120) for uid, r in refs.items()}
        stats = ray.get(ray.get_actor(f"writing_rl_coordinator:{experiment}").stats.remote())

    assert stats["batches"]["rollouts"] == len(uids) * G
    assert stats["batches"]["submit_calls"] < stats["batches"]["rollouts"]
    for uid, members in results.items():
        reference = choose_reference(list(range(G)), uid, seed=0)
        for s, result in enumerate(members):  # each answer reached the rollout it belongs to
            assert result["reward_extra_info"]["brpo_is_reference"] == (s == reference)
            expected = 0.0 if s == reference else (1.0 if quality(s) > quality(reference) else -1.0)
            assert result["reward_score"] == expected, (uid, s)


@pytest.mark.slow
def test_waiting_rollouts_fail_with_the_reason_when_the_coordinator_dies(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, scores_server: JudgeServerProcess) -> None:
    experiment = f"link-{uuid.uuid4().hex[:8]}"
    uid = f"uid-{uuid.uuid4()}"
    config = brpo_config(tokenizer_dir, scores_server, experiment, "+reward.reward_kwargs.brpo.group_timeout_s=600")
    with reward_workers(config) as workers:
        # two of the group's sixteen: they wait at the coordinator for members that never come
        refs = [send(workers, rollout_data(tokenizer, row(0), f"text {s} QUALITY=5", uid, s)) for s in range(2)]
        while (coordinator := arrived_at_coordinator(experiment, 2)) is None:
            time.sleep(0.1)
        ray.kill(coordinator)
        for ref in refs:
            with pytest.raises(ray.exceptions.RayTaskError, match=r"writing-rl coordinator .* is gone"):
                ray.get(ref, timeout=120)


class TwoArgumentError(Exception):
    def __init__(self, message: str, cause: str):
        super().__init__(message)
        self.cause = cause


async def test_an_error_that_cannot_cross_to_the_worker_arrives_as_its_type_and_message() -> None:
    inboxes = RewardInboxes()
    inboxes.put("worker-1", 7, None, TwoArgumentError("the judge serves another model", "config"))
    inboxes.put("worker-1", 8, None, ValueError("session_id 1 arrived twice"))
    inboxes.put("worker-2", 9, {"reward": 1.0, "extra": {}}, None)
    (seven, _, unportable), (eight, _, portable) = await inboxes.take("worker-1")
    assert (seven, eight) == (7, 8)
    assert isinstance(unportable, RuntimeError)
    assert str(unportable) == "TwoArgumentError: the judge serves another model"
    assert isinstance(portable, ValueError) and str(portable) == "session_id 1 arrived twice"
    assert await inboxes.take("worker-2") == [(9, {"reward": 1.0, "extra": {}}, None)]
