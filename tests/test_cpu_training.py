"""verl's whole `fit()` on CPU through the `hf_cpu` rollout: the shipped scripts' exact overrides plus the CPU ones,
verl's `main_ppo` in a real subprocess (its own local Ray), a real FSDP2 actor on a tiny random model, the loopback
judge on 127.0.0.1. Each job runs once per module; the tests read what it left: verl's per-step metrics, its
checkpoints, our index files and the job's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from writing_rl.cpu.job import CpuJobShape
from writing_rl.cpu.rehearsal import (
    JobResult,
    PreparedJob,
    RehearsalError,
    RehearsalRequest,
    actor_weights,
    environment_with,
    prepare,
    rollout_actor_gap,
    run_job,
)
from writing_rl.curriculum.index_file import history_path, read_history, read_index
from writing_rl.genrm.rl_rows import build_genrm_rl
from writing_rl.testing.server_process import JudgeServerProcess

REPO = Path(__file__).resolve().parents[1]
LEARNING_RATE = 1e-2
"""Large enough that one update moves the tiny model's probabilities far more than the sync tolerance, so a
rollout left on the previous step's weights could not pass for a synced one."""
SYNC_TOLERANCE = 1e-4
SHAPE = CpuJobShape(steps=2, batch_size=4, group_size=4, max_prompt_length=256, max_response_length=16,
                    learning_rate=LEARNING_RATE)

pytestmark = pytest.mark.slow


def writing_row(i: int) -> dict[str, Any]:
    prompt = f"Write a short story number {i} about the sea."
    ladder = ["A middling story. QUALITY=5", "A strong story. QUALITY=9"]  # a policy text's hashed quality: 1..9
    return {"data_source": "writing", "prompt": [{"role": "user", "content": prompt}], "ability": "writing",
            "reward_model": {"style": "model", "ground_truth": {"prompt": prompt, "target": ladder,
                                                                "criteria": None, "id": f"p{i}"}},
            "extra_info": {"index": f"p{i}", "split": "train"}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cpu_data")
    rows = [writing_row(i) for i in range(6)]
    pq.write_table(pa.Table.from_pylist(rows[:4]), folder / "train.parquet")
    pq.write_table(pa.Table.from_pylist(rows[4:]), folder / "test.parquet")
    build_genrm_rl(REPO / "examples/pairs.jsonl", folder / "genrm")
    pair = pq.read_table(folder / "genrm/train.parquet").slice(0, 2)  # one pair, both orders: a short validation
    pq.write_table(pair, folder / "genrm/val.parquet")
    return folder


def steps_of(job: PreparedJob) -> dict[int, dict[str, float]]:
    return {s["step"]: s["data"] for s in map(json.loads, job.metrics_path.read_text().splitlines())}


def run_script(script: str, env: dict[str, str], out_dir: Path, shape: CpuJobShape = SHAPE
               ) -> tuple[PreparedJob, JobResult]:
    with environment_with(env):  # the script reads its settings from the environment
        job = prepare(RehearsalRequest(script=REPO / script, overrides=[], out_dir=out_dir, shape=shape))
    result = run_job(job)
    assert result.returncode == 0, f"{result.error}; log: {job.log_path}"
    return job, result


def text_log_probs(job: PreparedJob, weights: dict[str, torch.Tensor] | None) -> torch.Tensor:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from writing_rl.cpu.generation import score

    model = AutoModelForCausalLM.from_pretrained(job.model).eval()
    if weights is not None:
        model.load_state_dict(weights, strict=False)
    tokenizer = AutoTokenizer.from_pretrained(job.model)
    return torch.tensor(score(model, tokenizer.encode("Once upon a time"), tokenizer.encode(" a lighthouse keeper")))


# ------------------------------------------------------------------------------------------------ Writing-RL (GRPO)
def writing_rl_env(data_dir: Path) -> dict[str, str]:
    """GRPO against rung 0 (QUALITY=5): a group of 4 all winning or all losing has 1/8 chance, so a step of 4 such
    groups with no gradient at all 1/4096; `any` promotes a prompt with at least one win (15/16 per step)."""
    return {"ALGO": "grpo", "ROLLOUT_N": "4", "PROMOTION": "any", "TRAIN_FILE": str(data_dir / "train.parquet"),
            "VAL_FILE": str(data_dir / "test.parquet"), "EXPERIMENT_NAME": "cpu-wrl", "JUDGE_MODEL": "test-judge"}


@pytest.fixture(scope="module")
def writing_rl_job(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[PreparedJob, dict, dict]:
    """Two steps; about one judgement in six is refused (HTTP 400, not retried): a failed judgement."""
    with JudgeServerProcess(mode="verdict", faults="bad_request=0.15", seed=1) as judge:
        env = {**writing_rl_env(data_dir), "JUDGE_BASE_URL": judge.base_url}
        job, _ = run_script("scripts/train_writing_rl.sh", env, tmp_path_factory.mktemp("wrl"))
        return job, steps_of(job), judge.stats()  # its metrics file is the resume's afterwards


def test_writing_rl_fit_updates_the_actor_and_syncs_the_rollout(
        writing_rl_job: tuple[PreparedJob, dict, dict]) -> None:
    job, steps, _ = writing_rl_job
    assert sorted(steps) == [1, 2]
    before, after_1, after_2 = None, actor_weights(job, 1), actor_weights(job, 2)
    initial = text_log_probs(job, before)
    moved = (text_log_probs(job, after_1) - initial).abs().max().item()
    assert moved > 100 * SYNC_TOLERANCE, "one update must move the policy far beyond the sync tolerance"
    assert any(not torch.equal(after_1[k], after_2[k]) for k in after_1), "step 2 trained the actor again"
    # every rollout step 2 sampled: its log-probs (per sequence) against the updated actor's recompute
    for step in (1, 2):
        assert steps[step]["training/rollout_probs_diff_valid"] == 1.0
        assert rollout_actor_gap(steps[step]) < SYNC_TOLERANCE
        assert steps[step]["training/off_policy/trajectory_staleness/max"] == 0  # sampled by this step's weights


def test_writing_rl_fit_promotes_and_snapshots_the_index(writing_rl_job: tuple[PreparedJob, dict, dict]) -> None:
    job, steps, _ = writing_rl_job
    live = job.out_dir / "run" / "index_cpu-wrl.json"
    promoted = {record["id"] for record in read_history(history_path(live))}
    assert promoted and sum(steps[s]["writing_rl/promotions"] for s in steps) == len(read_history(history_path(live)))
    for step in (1, 2):
        snapshot = job.out_dir / f"checkpoints/global_step_{step}/writing_rl/index_cpu-wrl.json"
        assert snapshot.is_file() and (snapshot.parent.parent / "actor").is_dir()
    assert read_index(job.out_dir / "checkpoints/global_step_2/writing_rl/index_cpu-wrl.json") == read_index(live)


def test_writing_rl_rollouts_whose_judgement_failed_train_no_token(
        writing_rl_job: tuple[PreparedJob, dict, dict]) -> None:
    _, steps, judge_stats = writing_rl_job
    refused = judge_stats["by_kind"].get("bad_request", 0)
    assert refused > 0, "the scripted judge refused nothing: raise its fault rate or change its seed"
    assert sum(s["judge/failures"] for s in steps.values()) == refused
    # one judgement per rollout (reference first): each refused one is a rollout with a zeroed response mask
    assert sum(s["reward/no_signal_excluded"] for s in steps.values()) == refused


def test_writing_rl_resume_restores_actor_optimizer_and_index_and_continues_at_step_3(  # last: it moves the index
        writing_rl_job: tuple[PreparedJob, dict, dict], data_dir: Path) -> None:
    job, _, _ = writing_rl_job
    live = job.out_dir / "run" / "index_cpu-wrl.json"
    at_step_2 = read_index(live)
    live.write_text(json.dumps(dict.fromkeys(at_step_2, 0)))  # the live index moved on; the checkpoint's wins
    with JudgeServerProcess(mode="verdict") as judge:
        env = {**writing_rl_env(data_dir), "JUDGE_BASE_URL": judge.base_url}
        resumed, _ = run_script("scripts/train_writing_rl.sh", env, job.out_dir,
                                replace(SHAPE, steps=3))
    assert sorted(steps_of(resumed)) == [3]
    log = resumed.log_path.read_text()
    step_2 = job.out_dir / "checkpoints/global_step_2"
    assert f"Loaded model from {step_2}/actor/model_world_size_1_rank_0.pt" in log
    assert f"Loaded optimizer from {step_2}/actor/optim_world_size_1_rank_0.pt" in log
    assert f"curriculum index restored from {step_2}" in log
    restored_then_step_3 = read_index(job.out_dir / "checkpoints/global_step_3/writing_rl/index_cpu-wrl.json")
    assert all(restored_then_step_3[i] >= at_step_2[i] for i in at_step_2)


# ---------------------------------------------------------------------------------------------------------- BRPO
def test_brpo_fit_through_the_rehearse_command(data_dir: Path, tmp_path: Path) -> None:
    """`writing-rl rehearse` as a user runs it, on the judge the script names (here a loopback one that refuses about
    one request in ten): each step's line as it ends, the verdict last, exit code 0. A failed BRPO judgement gives its
    member reward 0 (advantage 0: no gradient) and leaves it in its group."""
    out = tmp_path / "rehearsal"
    with JudgeServerProcess(mode="scores", faults="bad_request=0.1", seed=3) as judge:
        env = {**os.environ, "TRAIN_FILE": str(data_dir / "train.parquet"), "VAL_FILE": str(data_dir / "test.parquet"),
               "EXPERIMENT_NAME": "cpu-brpo", "JUDGE_BASE_URL": judge.base_url, "JUDGE_MODEL": "test-judge",
               "SKEW_THRESHOLD": "1.0"}
        result = subprocess.run([sys.executable, "-m", "writing_rl.cli", "rehearse", "scripts/train_brpo.sh",
                                 "--out-dir", str(out), "--batch-size", str(SHAPE.batch_size),
                                 "--max-response-length", str(SHAPE.max_response_length), "--lr", str(LEARNING_RATE),
                                 "--max-prompt-length", str(SHAPE.max_prompt_length)],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        refused = judge.stats()["by_kind"].get("bad_request", 0)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("rehearsal passed: 2 steps in ") and str(out) in lines[-1]
    assert [line.split("  ")[0] for line in lines if line.startswith("step ")] == ["step 1/2", "step 2/2"]
    assert "[ok] judge reachable" in result.stdout  # preflight's checks ran first, on the rehearsal's config
    steps = {s["step"]: s["data"] for s in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    assert sorted(steps) == [1, 2]
    assert sum(s["judge/failures"] for s in steps.values()) == refused
    for s in steps.values():
        assert rollout_actor_gap(s) < SYNC_TOLERANCE
        assert s["brpo/groups"] == SHAPE.batch_size  # one judged group per prompt: the group of n came together
        assert s["reward/no_signal_excluded"] == 0  # BRPO's failed members stay (reward 0), see no_signal.py
    assert (out / "checkpoints/global_step_2/actor/model_world_size_1_rank_0.pt").is_file()


# ------------------------------------------------------------------------------------------------------- GenRM RL
def test_genrm_rl_fit_logs_genrm_metrics_with_the_kl_loss_off(data_dir: Path, tmp_path: Path) -> None:
    env = {"TRAIN_FILE": str(data_dir / "genrm/train.parquet"), "VAL_FILE": str(data_dir / "genrm/val.parquet")}
    # one pair (both orders) per step: a critique prompt is ~500 tokens, and the actor's logits over GPT-2's 50k
    # vocabulary for every token are what a step costs here
    job, _ = run_script("scripts/train_genrm_rl.sh", env, tmp_path,
                        replace(SHAPE, batch_size=2, max_prompt_length=2048))
    assert any("KL loss off" in note for note in job.notes)
    assert "actor_rollout_ref.actor.use_kl_loss=False" in job.overrides
    steps = steps_of(job)
    assert sorted(steps) == [0, 1, 2]  # the script validates before training
    assert steps.pop(0)["val-aux/genrm_pairwise/malformed/mean@1"] == 1.0
    for s in steps.values():
        # a random model writes no \boxed{a, b}: every rollout is malformed, and the metrics say so
        assert s["genrm/malformed_rate"] == 1.0 and s["critic/score/mean"] == -1.5
        assert s["genrm/pairs_with_both_orders"] == 1.0
        assert rollout_actor_gap(s) < SYNC_TOLERANCE


def test_ppo_with_a_critic_is_refused_with_the_reason(data_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAIN_FILE", str(data_dir / "train.parquet"))
    with pytest.raises(RehearsalError, match="flash_attention_2 hard-coded") as caught:
        prepare(RehearsalRequest(script=REPO / "scripts/train_writing_rl.sh", overrides=[], out_dir=tmp_path))
    assert caught.value.part == "critic"
