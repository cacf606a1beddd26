"""Writing-RL through verl's real reward loop (real Ray, 2-4 reward workers) against the loopback judge:
rewards, promotions, the index file and its history, hand edits, checkpoint restore, validation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from writing_rl.curriculum.checkpoint import IndexSnapshot
from writing_rl.curriculum.index_creation import create_index
from writing_rl.curriculum.index_file import history_path, read_history, read_index
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data, send
from writing_rl.testing.server_process import JudgeServerProcess

N = 4
LADDER = ["ref QUALITY=3", "ref QUALITY=5", "ref QUALITY=7"]


@pytest.fixture(scope="module")
def verdict_server() -> Iterator[JudgeServerProcess]:
    with JudgeServerProcess(mode="verdict") as server:
        yield server


def rows(n_prompts: int, ladder: list[str] = LADDER) -> list[dict[str, Any]]:
    out = []
    for i in range(n_prompts):
        pid = f"p{i}"
        refs = ladder if i != n_prompts - 1 else ladder[:1]  # the last prompt has a one-rung ladder
        out.append({"data_source": "writing", "prompt": [{"role": "user", "content": f"Write {pid}"}],
                    "reward_model": {"style": "judge", "ground_truth": {"prompt": f"Write {pid}", "target": refs,
                                                                        "criteria": None, "id": pid}},
                    "extra_info": {"index": pid, "split": "train"}})
    return out


class Job:
    """One training job's reward side: parquet, index, verl's reward workers, our coordinator."""

    def __init__(self, tmp: Path, tokenizer_dir: str, server: JudgeServerProcess, n_prompts: int,
                 workers: int = 2, extra: tuple[str, ...] = ()):
        self.tmp, self.rows = tmp, rows(n_prompts)
        self.experiment = f"wrl-{uuid.uuid4().hex[:8]}"
        train = tmp / "train.parquet"
        pq.write_table(pa.Table.from_pylist(self.rows), train)
        self.index, _ = create_index([train], self.experiment, tmp / "running_file")
        self.config = reward_loop_config(tokenizer_dir, [
            "reward.reward_manager.name=writing_rl", f"reward.num_workers={workers}",
            f"actor_rollout_ref.rollout.n={N}", f"data.train_files={train}", f"data.train_batch_size={n_prompts}",
            f"+reward.reward_kwargs.experiment={self.experiment}",
            f"+reward.reward_kwargs.run_dir={tmp / 'running_file'}",
            f"+reward.reward_kwargs.judge.base_url={server.base_url}", "+reward.reward_kwargs.judge.model=test-judge",
            "+reward.reward_kwargs.judge.max_concurrency=8", *extra])

    def coordinator(self) -> Any:
        return ray.get_actor(f"writing_rl_coordinator:{self.experiment}")

    def step(self, workers: list, tokenizer: Any, qualities: dict[str, list[float]]) -> dict[str, list[dict]]:
        """One training step: N rollouts per prompt, all sent at once to random workers."""
        refs = {}
        for row in self.rows:
            pid = row["extra_info"]["index"]
            uid = f"{pid}-{uuid.uuid4()}"
            refs[pid] = [send(workers, rollout_data(tokenizer, row, f"{pid} s{s} QUALITY={q:g}", uid, s))
                         for s, q in enumerate(qualities[pid])]
        return {pid: ray.get(r, timeout=180) for pid, r in refs.items()}

    def validate(self, workers: list, tokenizer: Any, quality: float) -> list[dict]:
        val_rows = [{**r, "extra_info": {**r["extra_info"], "split": "test"}} for r in self.rows]
        return ray.get([send(workers, rollout_data(tokenizer, r, f"val QUALITY={quality:g}", f"v-{uuid.uuid4()}", 0))
                        for r in val_rows], timeout=180)


def outcome(q: float, ref_q: float) -> float:
    return 1.0 if q > ref_q else 0.5 if q == ref_q else 0.0


@pytest.mark.slow
def test_rewards_promotions_history_metrics_and_validation(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, verdict_server: JudgeServerProcess,
        tmp_path: Path) -> None:
    job = Job(tmp_path, tokenizer_dir, verdict_server, n_prompts=4)
    # p0 wins once at rung 0 (ref 3); p1 only ties and loses; p2 wins 3 times; p3 (one-rung ladder) wins: mastered
    step1 = {"p0": [4, 2, 1, 3], "p1": [3, 3, 2, 1], "p2": [6, 6, 6, 1], "p3": [8, 1, 1, 1]}
    with reward_workers(job.config) as workers:
        results = job.step(workers, tokenizer, step1)
        index_after_1 = read_index(job.index)
        text_after_1 = job.index.read_text()
        coordinator = job.coordinator()
        metrics_1 = ray.get(coordinator.step_metrics.remote())
        before_validation = job.index.read_bytes(), history_path(job.index).read_bytes()
        validation = job.validate(workers, tokenizer, quality=6)
        after_validation = job.index.read_bytes(), history_path(job.index).read_bytes()
        step2 = job.step(workers, tokenizer, {"p0": [6, 4, 4, 4], "p1": [4, 1, 1, 1], "p2": [6, 6, 6, 6],
                                              "p3": [1, 1, 1, 1]})
        index_after_2 = read_index(job.index)
        metrics_2 = ray.get(coordinator.step_metrics.remote())

    for pid, qs in step1.items():
        assert [r["reward_score"] for r in results[pid]] == [outcome(q, 3) for q in qs], pid
        assert {r["reward_extra_info"]["wrl_rung"] for r in results[pid]} == {0}
        assert {r["reward_extra_info"]["wrl_position"] for r in results[pid]} == {"reference_first"}
    keys = {frozenset(r["reward_extra_info"]) for rs in results.values() for r in rs}
    assert len(keys) == 1  # every sample has the same reward_extra_info keys
    assert index_after_1 == {"p0": 1, "p1": 0, "p2": 1, "p3": 0}  # once per prompt per step, capped
    history = read_history(history_path(job.index))
    assert [(h["id"], h["from"], h["to"], h["step"]) for h in sorted(history[:3], key=lambda h: h["id"])] == [
        ("p0", 0, 1, 1), ("p2", 0, 1, 1), ("p3", 0, 0, 1)]
    assert next(h for h in history if h["id"] == "p2")["wins"] == 3
    assert next(h for h in history if h["id"] == "p3")["mastered"] is True
    assert json.loads(text_after_1) == index_after_1
    assert text_after_1.count("\n") == 4 + 2  # one entry per line

    assert metrics_1["writing_rl/win_rate"] == pytest.approx(5 / 16)
    assert metrics_1["writing_rl/tie_rate"] == pytest.approx(3 / 16)
    assert metrics_1["writing_rl/promotions"] == 2 and metrics_1["writing_rl/mean_rung"] == 0.5
    assert metrics_1["writing_rl/mastered_fraction"] == 0.25 and metrics_1["writing_rl/failure_rate"] == 0

    # validation: judged against the current rung, never changes the curriculum
    assert before_validation == after_validation
    by_id = {r["reward_extra_info"]["wrl_rung"]: r["reward_score"] for r in validation}
    assert by_id == {1: 1.0, 0: 1.0}
    assert all(r["reward_extra_info"]["wrl_validation"] for r in validation)

    # step 2: p0 and p2 now face rung 1 (ref 5)
    assert [r["reward_score"] for r in step2["p0"]] == [1.0, 0.0, 0.0, 0.0]
    assert index_after_2 == {"p0": 2, "p1": 1, "p2": 2, "p3": 0}
    assert metrics_2["writing_rl/promotions"] == 3 and metrics_2["writing_rl/groups"] == 4
    assert len(read_history(history_path(job.index))) == 3 + 3
    assert max(h["step"] for h in read_history(history_path(job.index))) == 2


@pytest.mark.slow
def test_no_promotion_lost_or_doubled_with_four_workers(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, verdict_server: JudgeServerProcess,
        tmp_path: Path) -> None:
    verdict_server.reset()
    verdict_server.configure(latency_s=0.01)
    job = Job(tmp_path, tokenizer_dir, verdict_server, n_prompts=64, workers=4)
    qualities = {f"p{i}": [4, 4, 1, 1] for i in range(64)}  # two winners per group: still one promotion
    try:
        with reward_workers(job.config) as workers:
            job.step(workers, tokenizer, qualities)
    finally:
        verdict_server.configure(latency_s=0.0)
    state = read_index(job.index)
    assert state == {**{f"p{i}": 1 for i in range(63)}, "p63": 0}
    history = read_history(history_path(job.index))
    assert sorted(h["id"] for h in history) == sorted(f"p{i}" for i in range(64))
    stats = verdict_server.stats()
    assert stats["requests"] == 64 * N and stats["max_in_flight"] <= 8


@pytest.mark.slow
def test_hand_edits_between_steps(ray_local: None, tokenizer_dir: str, tokenizer: Any,
                                  verdict_server: JudgeServerProcess, tmp_path: Path) -> None:
    job = Job(tmp_path, tokenizer_dir, verdict_server, n_prompts=3)
    win_all = {"p0": [9, 1, 1, 1], "p1": [9, 1, 1, 1], "p2": [9, 1, 1, 1]}
    with reward_workers(job.config) as workers:
        job.step(workers, tokenizer, win_all)
        assert read_index(job.index) == {"p0": 1, "p1": 1, "p2": 0}
        # a person moves p1 back to rung 0 and p0 up to rung 2 between steps
        job.index.write_text('{\n  "p0": 2,\n  "p1": 0,\n  "p2": 0\n}\n')
        step2 = job.step(workers, tokenizer, {"p0": [6, 1, 1, 1], "p1": [4, 1, 1, 1], "p2": [1, 1, 1, 1]})
        assert {r["reward_extra_info"]["wrl_rung"] for r in step2["p0"]} == {2}  # picked up before judging
        assert {r["reward_extra_info"]["wrl_rung"] for r in step2["p1"]} == {0}
        assert read_index(job.index) == {"p0": 2, "p1": 1, "p2": 0}  # the edit and the new promotion, both
        # an invalid edit: reported, kept aside, training continues on the last good state
        job.index.write_text('{"p0": 2, "p1": 7}')
        job.step(workers, tokenizer, {"p0": [1, 1, 1, 1], "p1": [1, 1, 1, 1], "p2": [1, 1, 1, 1]})
        snapshot = ray.get(job.coordinator().stats.remote())["writing_rl"]
    assert read_index(job.index) == {"p0": 2, "p1": 1, "p2": 0}
    rejected = list(job.index.parent.glob(job.index.name + ".rejected-*"))
    assert len(rejected) == 1 and rejected[0].read_text() == '{"p0": 2, "p1": 7}'
    assert snapshot["edits_adopted"] == 1 and snapshot["edits_rejected"] == 1


@pytest.mark.slow
def test_resume_from_checkpoint_restores_the_index(ray_local: None, tokenizer_dir: str, tokenizer: Any,
                                                   verdict_server: JudgeServerProcess, tmp_path: Path) -> None:
    job = Job(tmp_path, tokenizer_dir, verdict_server, n_prompts=3)
    win_all = {"p0": [9, 1, 1, 1], "p1": [9, 1, 1, 1], "p2": [9, 1, 1, 1]}
    checkpoint = tmp_path / "checkpoints" / "global_step_1"
    with reward_workers(job.config) as workers:
        job.step(workers, tokenizer, win_all)
        ray.get(job.coordinator().save_index.remote()).save_into(checkpoint)  # what WritingTrainer does at a save
        at_step_1 = read_index(job.index)
        history_at_1 = history_path(job.index).read_text()
        job.step(workers, tokenizer, win_all)
        assert read_index(job.index) != at_step_1
        # resume from step 1: restore, tell the coordinator, keep training
        snapshot = IndexSnapshot.load_from(checkpoint, job.index.name)
        assert snapshot is not None
        ray.get(job.coordinator().restore_index.remote(snapshot))
        assert read_index(job.index) == at_step_1 == {"p0": 1, "p1": 1, "p2": 0}
        assert history_path(job.index).read_text() == history_at_1
        after = job.step(workers, tokenizer, {"p0": [1, 1, 1, 1], "p1": [1, 1, 1, 1], "p2": [1, 1, 1, 1]})
    assert {r["reward_extra_info"]["wrl_rung"] for r in after["p0"]} == {1}
