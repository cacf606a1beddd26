"""BRPO through verl's real reward loop (real Ray, 2 reward workers) against the loopback judge,
then verl's own compute_advantage with adv_estimator="brpo"; candidates judged as they arrive, before their
group is complete, with the draw over the arrivals kept for sessions not numbered 0..G-1; the batched line
between the reward workers and the coordinator: a burst travels in fewer calls than rollouts and every rollout
still gets its own reward; a coordinator that dies fails every waiting rollout with the reason instead of a
hang; an error reaches the rollout it belongs to, as itself or, when it cannot be unpickled, as its type and
message."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import ray
import torch
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage

from writing_rl.brpo.group import choose_reference
from writing_rl.testing.cli_runner import wait_for_requests
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data, send
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.verl_glue.reward_inboxes import RewardInboxes

G = 4


@pytest.fixture(scope="module")
def genrm_server() -> Iterator[JudgeServerProcess]:
    with JudgeServerProcess(mode="scores") as server:
        yield server


def row(i: int, split: str = "train", reference: str | None = None) -> dict[str, Any]:
    ground_truth = {"prompt": f"Write piece {i}.", "target": reference, "criteria": None, "id": str(i)}
    return {"data_source": "writing", "prompt": [{"role": "user", "content": f"Write piece {i}."}],
            "reward_model": {"style": "rule", "ground_truth": ground_truth},
            "extra_info": {"index": str(i), "split": split}}


def make_config(tokenizer_dir: str, server: JudgeServerProcess, experiment: str, *extra: str) -> Any:
    return reward_loop_config(tokenizer_dir, [
        "reward.reward_manager.name=brpo", f"actor_rollout_ref.rollout.n={G}",
        f"+reward.reward_kwargs.experiment={experiment}",
        f"+reward.reward_kwargs.judge.base_url={server.base_url}",
        "+reward.reward_kwargs.judge.model=test-judge", "+reward.reward_kwargs.judge.max_concurrency=8",
        "+reward.reward_kwargs.judge.backoff_initial_s=0.01", *extra])


def coordinator_stats(experiment: str) -> dict[str, Any]:
    return ray.get(ray.get_actor(f"writing_rl_coordinator:{experiment}").stats.remote())


def expected_rewards(uid: str, qualities: list[float], sessions: list[int] | None = None) -> list[float]:
    """Each member's reward, in the order given, for a group with these qualities and session ids (0..n-1 unless
    given)."""
    sessions = sessions or list(range(len(qualities)))
    ref = sessions.index(choose_reference(sessions, uid, seed=0))
    return [0.0 if i == ref else (1.0 if q > qualities[ref] else -1.0) for i, q in enumerate(qualities)]


def advantages_for(results: dict[str, list[dict]], tokenizer: Any, threshold: float = 0.6) -> tuple[DataProto, list]:
    """A batch as the trainer holds it (token-level rewards on the last response token) -> compute_advantage."""
    uids, rewards, lengths = [], [], []
    for uid, members in results.items():
        for result in members:
            uids.append(uid)
            rewards.append(result["reward_score"])
            lengths.append(3 + len(uids) % 4)
    width = max(lengths)
    mask = torch.zeros(len(uids), width)
    token_rewards = torch.zeros(len(uids), width)
    for i, (length, reward) in enumerate(zip(lengths, rewards, strict=True)):
        mask[i, :length] = 1
        token_rewards[i, length - 1] = reward
    data = DataProto.from_dict(tensors={"token_level_rewards": token_rewards, "response_mask": mask,
                                        "responses": torch.ones(len(uids), width, dtype=torch.long)},
                               non_tensors={"uid": np.array(uids, dtype=object)})
    from omegaconf import OmegaConf

    config = OmegaConf.create({"adv_estimator": "brpo", "brpo": {"skew_threshold": threshold}})
    return compute_advantage(data, adv_estimator="brpo", config=config), rewards


@pytest.mark.slow
def test_groups_rewards_and_advantages(ray_local: None, tokenizer_dir: str, tokenizer: Any,
                                       genrm_server: JudgeServerProcess) -> None:
    genrm_server.reset()
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    groups = {f"uid-{uuid.uuid4()}": [2.0 + ((p * 3 + s * 5) % 7) for s in range(G)] for p in range(6)}
    skewed_uid, balanced_uid = list(groups)[:2]
    groups[skewed_uid] = [9.0, 9.0, 9.0, 9.0]
    # the reference of the skewed group is the only weak text: every candidate beats it
    groups[skewed_uid][choose_reference(list(range(G)), skewed_uid, seed=0)] = 1.0
    # the reference of the balanced group sits in the middle: one candidate beats it, two lose (|mean| 0.25)
    groups[balanced_uid] = [2.0, 3.0, 8.0]
    groups[balanced_uid].insert(choose_reference(list(range(G)), balanced_uid, seed=0), 5.0)
    with reward_workers(make_config(tokenizer_dir, genrm_server, experiment)) as workers:
        refs = {uid: [send(workers, rollout_data(tokenizer, row(p), f"text {uid} {s} QUALITY={q:g}", uid, s))
                      for s, q in enumerate(qs)] for p, (uid, qs) in enumerate(groups.items())}
        results = {uid: ray.get(r, timeout=120) for uid, r in refs.items()}
        stats = coordinator_stats(experiment)
        coordinator = ray.get_actor(f"writing_rl_coordinator:{experiment}")
        step_one, step_two = ray.get(coordinator.step_metrics.remote()), ray.get(coordinator.step_metrics.remote())

    for uid, qualities in groups.items():
        got = [r["reward_score"] for r in results[uid]]
        assert got == expected_rewards(uid, qualities), uid
        infos = [r["reward_extra_info"] for r in results[uid]]
        assert sum(i["brpo_is_reference"] for i in infos) == 1
        assert all(set(i) == set(infos[0]) for i in infos)  # the same keys for every sample
        assert all(i["brpo_consistent"] and not i["brpo_failed"] for i in infos)
    # exactly (G-1) x 2 orders x 1 vote judge requests per group, none for the reference
    assert genrm_server.stats()["requests"] == len(groups) * (G - 1) * 2
    skewed = {uid for uid, qs in groups.items() if abs(sum(expected_rewards(uid, qs))) / G > 0.6}
    assert skewed_uid in skewed and balanced_uid not in skewed
    assert stats["brpo"]["groups"] == len(groups) and stats["brpo"]["skewed_groups"] == len(skewed)

    assert step_one["brpo/groups"] == len(groups) and step_two["brpo/groups"] == 0
    assert step_one["judge/http_requests"] == len(groups) * (G - 1) * 2 and step_one["judge/latency_p95_s"] > 0
    assert step_one["brpo/dropped_group_fraction"] == pytest.approx(len(skewed) / len(groups))
    assert step_one["brpo/both_order_consistency"] == 1.0 and step_one["brpo/judge_failure_rate"] == 0.0

    data, rewards = advantages_for(results, tokenizer)
    advantages = data.batch["advantages"]
    mask = data.batch["response_mask"]
    uids = data.non_tensor_batch["uid"]
    for i, uid in enumerate(uids):
        expected = 0.0 if uid in skewed else rewards[i]
        assert torch.all(advantages[i][mask[i] > 0] == expected)
        assert torch.all(advantages[i][mask[i] == 0] == 0)
    assert torch.count_nonzero(advantages) > 0
    # with the filter disabled the skewed group keeps its +1s
    unfiltered, _ = advantages_for(results, tokenizer, threshold=1.0)
    skewed_rows = [i for i, u in enumerate(uids) if u == skewed_uid]
    row_sums = (unfiltered.batch["advantages"][skewed_rows] * mask[skewed_rows]).sum(-1) / mask[skewed_rows].sum(-1)
    assert sorted(row_sums.tolist()) == [0.0, 1.0, 1.0, 1.0]


@pytest.mark.slow
def test_failures_score_zero_and_groups_of_one(ray_local: None, tokenizer_dir: str, tokenizer: Any,
                                               genrm_server: JudgeServerProcess) -> None:
    genrm_server.reset()
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    uid = f"uid-{uuid.uuid4()}"
    texts = [f"t{s} QUALITY={s + 2}" for s in range(G)]
    ref = choose_reference(list(range(G)), uid, seed=0)
    broken, unreadable = (ref + 1) % G, (ref + 2) % G
    texts[broken] += " JUDGE_FAULT=error_500"
    texts[unreadable] += " JUDGE_FAULT=no_verdict"
    config = make_config(tokenizer_dir, genrm_server, experiment, "+reward.reward_kwargs.judge.max_retries=1")
    with reward_workers(config) as workers:
        results = ray.get([send(workers, rollout_data(tokenizer, row(0), t, uid, s)) for s, t in enumerate(texts)])
        coordinator = ray.get_actor(f"writing_rl_coordinator:{experiment}")
        metrics = ray.get(coordinator.step_metrics.remote())
        # validation rows: groups of one (val_kwargs.n = 1)
        with_ref = ray.get(send(workers, rollout_data(tokenizer, row(1, "test", "QUALITY=5 ref"), "QUALITY=8 mine",
                                                      f"val-{uuid.uuid4()}", 0)))
        losing = ray.get(send(workers, rollout_data(tokenizer, row(2, "test", ["weak", "QUALITY=9 strong"]),
                                                    "QUALITY=8 mine", f"val-{uuid.uuid4()}", 0)))
        without_ref = ray.get(send(workers, rollout_data(tokenizer, row(3, "test"), "QUALITY=8", f"val-{uuid.uuid4()}",
                                                         0)))
    assert results[broken]["reward_score"] == 0.0 and results[broken]["reward_extra_info"]["brpo_failed"]
    assert results[ref]["reward_score"] == 0.0 and results[ref]["reward_extra_info"]["brpo_is_reference"]
    others = [s for s in range(G) if s not in (ref, broken)]
    assert all(abs(results[s]["reward_score"]) == 1.0 for s in others)
    assert results[unreadable]["reward_score"] == -1.0  # an unparseable verdict is a loss, and it is counted:
    assert metrics["brpo/parse_failure_rate"] == pytest.approx(1 / (G - 1))
    assert metrics["brpo/judge_failure_rate"] == pytest.approx(1 / (G - 1))
    # through verl's compute_advantage with the brpo estimator: the failed rollout gets no advantage
    data, _ = advantages_for({uid: results}, tokenizer, threshold=1.0)
    assert torch.all(data.batch["advantages"][broken] == 0) and torch.all(data.batch["advantages"][ref] == 0)
    assert all(torch.any(data.batch["advantages"][s] != 0) for s in others)
    assert with_ref["reward_score"] == 1.0 and with_ref["reward_extra_info"]["brpo_group_size"] == 1
    assert losing["reward_score"] == -1.0  # compared with the strongest dataset reference
    assert without_ref["reward_score"] == 0.0


@pytest.mark.slow
def test_incomplete_group_times_out_and_late_member_gets_no_signal(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, genrm_server: JudgeServerProcess) -> None:
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    uid = f"uid-{uuid.uuid4()}"
    config = make_config(tokenizer_dir, genrm_server, experiment, "+reward.reward_kwargs.brpo.group_timeout_s=2")
    with reward_workers(config) as workers:
        # the coordinator and the workers start first (tens of seconds on a loaded machine): the clock below measures
        # the group timeout alone, from warm workers, as in training
        ray.get([w.compute_score.remote(rollout_data(tokenizer, row(9, "test"), "warm-up", f"w{i}", 0))
                 for i, w in enumerate(workers)], timeout=300)
        started = time.monotonic()
        arrived = ray.get([send(workers, rollout_data(tokenizer, row(0), f"QUALITY={s + 3} x", uid, s))
                           for s in range(G - 1)], timeout=60)
        waited = time.monotonic() - started
        late = ray.get(send(workers, rollout_data(tokenizer, row(0), "QUALITY=9 late", uid, G - 1)), timeout=60)
        stats = coordinator_stats(experiment)
    assert 1.5 < waited < 30
    assert [r["reward_extra_info"]["brpo_group_size"] for r in arrived] == [G - 1] * (G - 1)
    assert sum(r["reward_extra_info"]["brpo_is_reference"] for r in arrived) == 1
    assert late["reward_score"] == 0.0 and late["reward_extra_info"]["brpo_failed"]
    assert stats["brpo"]["timed_out_groups"] == 1 and stats["brpo"]["late_members"] == 1


@pytest.mark.slow
def test_judging_overlaps_generation_and_cache_makes_repeats_free(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, genrm_server: JudgeServerProcess, tmp_path) -> None:
    genrm_server.reset()
    genrm_server.configure(latency_s=0.05)
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    config = make_config(tokenizer_dir, genrm_server, experiment,
                         f"+reward.reward_kwargs.judge.cache_path={tmp_path / 'cache.sqlite'}")
    uids = [f"uid-{uuid.uuid4()}" for _ in range(3)]
    with reward_workers(config) as workers:
        # in training the workers are up long before the first rollout finishes: wait for both
        ray.get([w.compute_score.remote(rollout_data(tokenizer, row(9, "test"), "warm-up", f"w{i}", 0))
                 for i, w in enumerate(workers)], timeout=120)
        pending, last_group_sent = [], 0.0
        for p, uid in enumerate(uids):  # groups finish generating one after another
            pending += [send(workers, rollout_data(tokenizer, row(p), f"g{p} s{s} QUALITY={s + 1}", uid, s))
                        for s in range(G)]
            last_group_sent = time.time()
            if p < len(uids) - 1:
                time.sleep(1.0)
        first_run = ray.get(pending, timeout=120)
        stats = coordinator_stats(experiment)
        requests_after_first = genrm_server.stats()["requests"]
    # a restarted job (new coordinator, same cache file) re-judging the same groups pays nothing
    again_config = make_config(tokenizer_dir, genrm_server, experiment + "-again",
                               f"+reward.reward_kwargs.judge.cache_path={tmp_path / 'cache.sqlite'}")
    with reward_workers(again_config) as workers:
        again = ray.get([send(workers, rollout_data(tokenizer, row(p), f"g{p} s{s} QUALITY={s + 1}", uid, s))
                         for p, uid in enumerate(uids) for s in range(G)], timeout=120)
    genrm_server.configure(latency_s=0.0)
    assert min(stats["brpo"]["judge_started_at"]) < last_group_sent - 0.5  # judged while others were generating
    assert requests_after_first == len(uids) * (G - 1) * 2
    assert genrm_server.stats()["requests"] == requests_after_first
    assert [r["reward_score"] for r in again] == [r["reward_score"] for r in first_run]


@pytest.mark.slow
def test_duplicate_session_never_drops_a_pending_member(ray_local: None, tokenizer_dir: str, tokenizer: Any,
                                                        genrm_server: JudgeServerProcess) -> None:
    """A second rollout claiming session 1 is refused with the reason; sessions 0, 1 and 3 still get rewards,
    judged as soon as G rollouts arrived (no group timeout), and a rollout without session_id is refused."""
    genrm_server.reset()
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    uid = f"uid-{uuid.uuid4()}"
    with reward_workers(make_config(tokenizer_dir, genrm_server, experiment)) as workers:
        refs = [send(workers, rollout_data(tokenizer, row(0), f"text {s} QUALITY={q}", uid, s))
                for s, q in ((0, 2), (1, 5), (1, 6), (3, 8))]
        kept, refused = [], []
        for ref in refs:  # the two session-1 rollouts race to the coordinator: either may be the duplicate
            try:
                kept.append(ray.get(ref, timeout=60))
            except ray.exceptions.RayTaskError as exc:
                refused.append(str(exc))
        assert len(refused) == 1 and "session_id 1 arrived twice" in refused[0]
        legacy = rollout_data(tokenizer, row(1), "text QUALITY=3", f"uid-{uuid.uuid4()}", 0)
        legacy.non_tensor_batch.pop("session_id")
        with pytest.raises(ray.exceptions.RayTaskError, match="without uid/session_id"):
            ray.get(send(workers, legacy), timeout=60)
        stats = coordinator_stats(experiment)
    assert sorted(r["reward_extra_info"]["brpo_group_size"] for r in kept) == [3, 3, 3]
    assert sum(r["reward_extra_info"]["brpo_is_reference"] for r in kept) == 1
    assert stats["brpo"]["duplicate_sessions"] == 1 and stats["brpo"]["timed_out_groups"] == 0


def quality(session: int) -> float:
    return 1 + session / 2


def arrived_at_coordinator(experiment: str, rollouts: int) -> Any:
    """The job's coordinator once it holds this many rollouts; None before (the reward workers create it)."""
    try:
        coordinator = ray.get_actor(f"writing_rl_coordinator:{experiment}")
    except ValueError:
        return None
    return coordinator if ray.get(coordinator.stats.remote())["batches"]["rollouts"] >= rollouts else None


@pytest.mark.slow
def test_a_burst_travels_in_batches_and_each_rollout_gets_its_own_reward(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, genrm_server: JudgeServerProcess) -> None:
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    uids = [f"uid-{uuid.uuid4()}" for _ in range(16)]
    with reward_workers(make_config(tokenizer_dir, genrm_server, experiment)) as workers:
        refs = {uid: [send(workers, rollout_data(tokenizer, row(p), f"text {s} QUALITY={quality(s):g}", uid, s))
                      for s in range(G)] for p, uid in enumerate(uids)}
        results = {uid: ray.get(r, timeout=120) for uid, r in refs.items()}
        stats = coordinator_stats(experiment)

    assert stats["batches"]["rollouts"] == len(uids) * G
    assert stats["batches"]["submit_calls"] < stats["batches"]["rollouts"]
    for uid, members in results.items():
        reference = choose_reference(list(range(G)), uid, seed=0)
        expected = expected_rewards(uid, [quality(s) for s in range(G)])
        for s, result in enumerate(members):  # each answer reached the rollout it belongs to
            assert result["reward_extra_info"]["brpo_is_reference"] == (s == reference)
            assert result["reward_score"] == expected[s], (uid, s)


def uid_where(condition: Any) -> str:
    return next(uid for uid in (f"uid-{uuid.uuid4()}" for _ in range(1000)) if condition(uid))


@pytest.mark.slow
def test_candidates_are_judged_while_their_group_is_still_generating(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, genrm_server: JudgeServerProcess) -> None:
    """The reference is known from (seed, uid): every candidate that arrived with it is judged before the last
    rollout comes, and the group's rewards are the ones judging it whole would give. Sessions 1..G (a custom agent
    loop): the calls made early against the draw for 0..G-1 are counted as discarded once session G shows that
    draw does not hold, and the group is judged against the member drawn from the sessions that arrived."""
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    numbered = uid_where(lambda u: choose_reference(list(range(G)), u, seed=0) != G - 1)
    foreign = list(range(1, G + 1))
    other = uid_where(lambda u: choose_reference(list(range(G)), u, seed=0) != 0
                      and choose_reference(foreign, u, seed=0) != choose_reference(list(range(G)), u, seed=0))
    config = make_config(tokenizer_dir, genrm_server, experiment, "+reward.reward_kwargs.brpo.group_timeout_s=600")

    def rollout(uid: str, s: int) -> Any:  # a prompt per group: the judge cache must not answer one from the other
        return rollout_data(tokenizer, row(0 if uid == numbered else 1), f"text {s} QUALITY={quality(s):g}", uid, s)

    with reward_workers(config) as workers:
        genrm_server.reset()
        refs = [send(workers, rollout(numbered, s)) for s in range(G - 1)]
        wait_for_requests(genrm_server, (G - 2) * 2, timeout_s=120)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        numbered_results = ray.get([*refs, send(workers, rollout(numbered, G - 1))], timeout=120)
        numbered_requests = genrm_server.stats()["requests"]
        numbered_stats = coordinator_stats(experiment)

        genrm_server.reset()
        refs = [send(workers, rollout(other, s)) for s in foreign[:-1]]
        wait_for_requests(genrm_server, (G - 2) * 2, timeout_s=120)
        foreign_results = ray.get([*refs, send(workers, rollout(other, G))], timeout=120)
        foreign_requests = genrm_server.stats()["requests"]
        stats = coordinator_stats(experiment)

    assert ready == []  # judged, yet nobody answered: the group is not complete
    assert numbered_requests == (G - 1) * 2
    assert [r["reward_score"] for r in numbered_results] == expected_rewards(numbered, [quality(s) for s in range(G)])
    assert numbered_stats["brpo"]["discarded_judgements"] == 0 and numbered_stats["brpo"]["groups"] == 1
    assert len(numbered_stats["brpo"]["closed_to_answered_s"]) == 1

    reference = choose_reference(foreign, other, seed=0)
    assert {r["reward_extra_info"]["brpo_reference_session"] for r in foreign_results} == {reference}
    assert [r["reward_score"] for r in foreign_results] == expected_rewards(other, [quality(s) for s in foreign],
                                                                            foreign)
    assert stats["brpo"]["discarded_judgements"] == G - 2
    # at most: the discarded calls and the group's own (a discarded pair already answered, old reference vs new,
    # is the group's pair new vs old in swapped orders, which the judge cache answers)
    assert (G - 2) * 2 + (G - 1) * 2 - 2 <= foreign_requests <= (G - 2) * 2 + (G - 1) * 2


@pytest.mark.slow
def test_waiting_rollouts_fail_with_the_reason_when_the_coordinator_dies(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, genrm_server: JudgeServerProcess) -> None:
    experiment = f"brpo-{uuid.uuid4().hex[:8]}"
    uid = f"uid-{uuid.uuid4()}"
    config = make_config(tokenizer_dir, genrm_server, experiment, "+reward.reward_kwargs.brpo.group_timeout_s=600")
    with reward_workers(config) as workers:
        # two of the group's four: they wait at the coordinator for members that never come
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
