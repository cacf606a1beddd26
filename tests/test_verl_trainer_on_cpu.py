"""Our glue inside verl 0.9.1's real V1 trainer, on CPU: the shipped scripts against verl's own
`validate_config`, the `WritingTrainer` class built from each script's config, and whole steps through verl's
agent loop (`AgentLoopWorkerTQ`), TransferQueue, the sync replay buffer, the reward-loop workers, our coordinator
and the loopback judge, with only vLLM and the FSDP workers played by stand-ins (see `trainer_on_cpu`)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
from verl.utils.config import validate_config

from writing_rl.brpo.group import choose_reference
from writing_rl.curriculum.index_creation import create_index
from writing_rl.curriculum.index_file import history_path, read_history, read_index
from writing_rl.preflight.training import script_overrides
from writing_rl.testing.cli_runner import call_cli
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.testing.trainer_on_cpu import JUDGE_FAIL, TQ_OVERRIDES, TrainerOnCpu, tiny_model_dir
from writing_rl.verl_glue.compatibility import TrainerFitError, trainer_fit_problems
from writing_rl.verl_glue.config import compose_trainer_config

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "brpo": ("scripts/train_brpo.sh", {}),
    "writing_rl_ppo": ("scripts/train_writing_rl.sh", {}),
    "writing_rl_grpo": ("scripts/train_writing_rl.sh", {"ALGO": "grpo", "ROLLOUT_N": "4", "PROMOTION": "majority"}),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny_model")))


def script_config(name: str, model_dir: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    script, env = SCRIPTS[name]
    for key, value in {**env, "MODEL_PATH": model_dir}.items():
        monkeypatch.setenv(key, value)
    return compose_trainer_config(script_overrides(REPO / script, []))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_script_passes_verls_validate_config(name: str, model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = script_config(name, model_dir, monkeypatch)
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert need_critic(config) == (name == "writing_rl_ppo")
    assert trainer_fit_problems(config) == []


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_writing_trainer_built_from_each_script_is_verls_sync_trainer(
        name: str, model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = script_config(name, model_dir, monkeypatch)
    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    assert type(trainer).__name__ == "WritingTrainer"
    assert type(trainer.replay_buffer) is ReplayBuffer  # not ReplayBufferAsync
    assert trainer.trainer_mode == trainer.replay_buffer.trainer_mode == "sync"
    assert trainer.replay_buffer.gen_batch_size == config.data.train_batch_size  # not forced to 1
    assert trainer.parameter_sync_step == 1


def test_preflight_rejects_the_brpo_script_without_dynamic_batching(model_dir: str, tmp_path: Path) -> None:
    """The defect class verl's validate_config caught: no micro-batch and no dynamic batch size."""
    script = (REPO / "scripts/train_brpo.sh").read_text()
    broken = "\n".join(line for line in script.splitlines() if "use_dynamic_bsz" not in line
                       and "ppo_max_token_len_per_gpu" not in line)
    (tmp_path / "train_brpo.sh").write_text(broken)
    shutil.copy(REPO / "scripts/judge_backend.sh", tmp_path)  # the script sources it from its own folder
    result = call_cli("preflight", str(tmp_path / "train_brpo.sh"), "--skip-judge",
                      env={"MODEL_PATH": model_dir, "RUN_DIR": str(tmp_path)})
    assert "[FAIL] verl validate_config: verl rejects this config before training" in result.stdout, result.stdout
    assert "ppo_micro_batch_size" in result.stdout
    assert result.returncode == 1


def test_preflight_says_when_validate_config_was_skipped(tmp_path: Path) -> None:
    result = call_cli("preflight", "scripts/train_brpo.sh", "--skip-judge",
                      env={"MODEL_PATH": "Some/HubModel", "RUN_DIR": str(tmp_path)})
    assert "[skip] verl validate_config: actor_rollout_ref.model.path=Some/HubModel is not a local folder" \
        in result.stdout, result.stdout


REFUSALS = {
    "legacy trainer": (["trainer.use_v1=false"], "Set trainer.use_v1=true"),
    "sync mode": (["trainer.v1.trainer_mode=sync"], "Set trainer.v1.trainer_mode=writing_rl"),
    "colocate_async mode": (["trainer.v1.trainer_mode=colocate_async"], "Set trainer.v1.trainer_mode=writing_rl"),
    "colocated reward model": (["reward.reward_model.enable=true"],
                               "Set reward.reward_model.enable_resource_pool=true"),
    "too few reward workers": (["reward.num_workers=1", "data.train_batch_size=128"],
                               "raise reward.num_workers to at least 5"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_say_what_to_change(case: str, model_dir: str, monkeypatch: pytest.MonkeyPatch,
                                     tokenizer: Any) -> None:
    """The reward manager (as verl's reward loop loads it) and the trainer refuse before anything runs."""
    from verl.trainer.ppo.reward import load_reward_manager

    from writing_rl.verl_glue.trainer import WritingTrainer

    overrides, advice = REFUSALS[case]
    monkeypatch.setenv("MODEL_PATH", model_dir)
    config = compose_trainer_config([*script_overrides(REPO / "scripts/train_brpo.sh", []), *overrides])
    with pytest.raises(TrainerFitError, match=advice):
        load_reward_manager(config, tokenizer)
    if case != "legacy trainer":  # the legacy trainer never constructs ours
        with pytest.raises(TrainerFitError, match=advice):
            WritingTrainer(config)


# ---------------------------------------------------------------- whole steps through verl's agent loop




def row(i: int, qualities: str, *, references: list[str] | None = None, split: str | None = "train") -> dict:
    """A verl row whose prompt tells the scripted LLM what each of its sessions writes."""
    prompt = f"Write piece {i}. QUALITIES={qualities}"
    extra_info: dict[str, Any] = {"index": f"p{i}"}
    if split is not None:
        extra_info["split"] = split
    return {"data_source": "writing", "prompt": [{"role": "user", "content": prompt}], "ability": "writing",
            "reward_model": {"style": "model", "ground_truth": {"prompt": prompt, "target": references,
                                                                "criteria": None, "id": f"p{i}"}},
            "extra_info": extra_info}


def job_config(tmp: Path, model_dir: str, server: JudgeServerProcess, method: str, experiment: str,
               *extra: str) -> Any:
    common = [
        f"actor_rollout_ref.model.path={model_dir}", "actor_rollout_ref.rollout.name=vllm",
        "trainer.v1.trainer_mode=writing_rl", f"reward.reward_manager.name={method}",
        f"data.train_files={tmp / 'train.parquet'}", f"data.val_files={tmp / 'val.parquet'}",
        "data.train_batch_size=2", "data.max_prompt_length=128", "data.max_response_length=32",
        "data.dataloader_num_workers=0", "data.shuffle=false", "actor_rollout_ref.rollout.n=4", "reward.num_workers=2",
        "actor_rollout_ref.rollout.agent.num_workers=2", "actor_rollout_ref.actor.use_dynamic_bsz=True",
        "trainer.n_gpus_per_node=1", f"trainer.default_local_dir={tmp / 'checkpoints'}", "trainer.save_freq=1",
        *TQ_OVERRIDES, f"+reward.reward_kwargs.experiment={experiment}",
        f"+reward.reward_kwargs.run_dir={tmp / 'running_file'}",
        f"+reward.reward_kwargs.judge.base_url={server.base_url}", "+reward.reward_kwargs.judge.model=test-judge",
        "+reward.reward_kwargs.judge.backoff_initial_s=0.01",
    ]
    return compose_trainer_config([*common, *extra])


@pytest.fixture(scope="module")
def genrm_server() -> Iterator[JudgeServerProcess]:
    with JudgeServerProcess(mode="scores") as server:
        yield server


@pytest.fixture(scope="module")
def verdict_server() -> Iterator[JudgeServerProcess]:
    with JudgeServerProcess(mode="verdict") as server:
        yield server


def quality(response: str) -> float:
    return float(response.rsplit("QUALITY=", 1)[1])


def by_group(trajectories: dict[str, dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for t in trajectories.values():
        groups[t["uid"]].append(t)
    return {uid: sorted(members, key=lambda t: t["session_id"]) for uid, members in groups.items()}


@pytest.mark.slow
def test_brpo_through_verls_agent_loop(transfer_queue: None, model_dir: str, genrm_server: JudgeServerProcess,
                                       tmp_path: Path) -> None:
    """n sessions per prompt: agent loop -> reward workers -> coordinator -> judge -> verl's _compute_advantage;
    one judgement per group; validation rows without `split`; a session that fails to generate."""
    pq.write_table(pa.Table.from_pylist([row(0, "9,1,2,3"), row(1, "2,3,4,FAIL")]), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pylist([row(5, "6", references=["ref QUALITY=4"], split=None),
                                         row(6, "2", references=["ref QUALITY=4"], split="train")]),
                   tmp_path / "val.parquet")
    genrm_server.reset()
    config = job_config(tmp_path, model_dir, genrm_server, "brpo", "brpo-cpu", "algorithm.adv_estimator=brpo",
                        "+algorithm.brpo.skew_threshold=0.6", "+reward.reward_kwargs.brpo.group_timeout_s=5")
    harness = TrainerOnCpu(config, model_dir)
    try:
        trajectories, metrics = harness.training_step()
        val_metrics = harness.validate()
    finally:
        harness.shutdown()

    groups = by_group(trajectories)
    complete = [members for members in groups.values() if len(members) == 4]
    assert len(complete) == 1 and len(groups) == 2
    members = complete[0]
    reference = choose_reference([m["session_id"] for m in members], members[0]["uid"], seed=0)
    ref_quality = quality(members[reference]["response"])
    for m in members:
        expected = 0.0 if m["session_id"] == reference else (1.0 if quality(m["response"]) > ref_quality else -1.0)
        assert m["reward"] == expected, members
        skewed = abs(sum(x["reward"] for x in members)) / 4 > 0.6
        assert m["advantage"] == (0.0 if skewed else expected)  # verl's _compute_advantage with our estimator
    # the group whose fourth session failed: judged with the three that arrived, after the group timeout
    failed_group = next(g for g in groups.values() if len(g) == 3)
    assert {m["extra"]["brpo_group_size"] for m in failed_group} == {3}
    assert metrics["brpo/groups"] == 2 and metrics["brpo/timed_out_groups"] == 1
    # one judgement per group: (members - 1) x 2 orders, all distinct texts
    assert metrics["judge/http_requests"] == 3 * 2 + 2 * 2
    # validation: groups of one against the reference, without waiting for a training-sized group
    assert val_metrics["val-brpo/groups"] == 2 and val_metrics["val-brpo/win_rate"] == 0.5
    assert val_metrics["val-judge/calls"] == 4
    assert val_metrics["val-core/writing/reward/mean@1"] == 0.0  # +1 and -1


@pytest.mark.slow
def test_writing_rl_two_steps_with_a_resume_through_verls_agent_loop(
        transfer_queue: None, model_dir: str, verdict_server: JudgeServerProcess, tmp_path: Path) -> None:
    """Step 1 promotes and verl saves a checkpoint; step 2 promotes again; the job restarts from step 1's
    checkpoint (resume_path): the index is back at its step-1 state and the history numbering continues."""
    ladder = ["ref QUALITY=3", "ref QUALITY=5", "ref QUALITY=7"]
    pq.write_table(pa.Table.from_pylist([row(0, "9,1,1,1", references=ladder),
                                         row(1, "1,1,1,1", references=ladder)]), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pylist([row(7, "9", references=ladder, split=None)]), tmp_path / "val.parquet")
    experiment = "wrl-cpu"
    index, _ = create_index([tmp_path / "train.parquet"], experiment, tmp_path / "running_file")
    args = ("algorithm.adv_estimator=grpo",)
    first = TrainerOnCpu(job_config(tmp_path, model_dir, verdict_server, "writing_rl", experiment, *args), model_dir)
    try:
        _, metrics_1 = first.training_step()
        at_step_1 = read_index(index)
        first.validate()  # never moves the curriculum, even though the val row has no split
        assert read_index(index) == at_step_1
        _, metrics_2 = first.training_step()
    finally:
        first.shutdown()
    assert at_step_1 == {"p0": 1, "p1": 0}
    assert metrics_1["writing_rl/promotions"] == 1 and metrics_2["writing_rl/promotions"] == 1
    assert read_index(index) == {"p0": 2, "p1": 0}
    checkpoint = tmp_path / "checkpoints" / "global_step_1"
    assert (checkpoint / "writing_rl" / index.name).exists()
    assert (tmp_path / "checkpoints" / "latest_checkpointed_iteration.txt").read_text() == "2"

    ray.kill(ray.get_actor(f"writing_rl_coordinator:{experiment}"))  # a new job gets a new coordinator
    resumed = TrainerOnCpu(job_config(tmp_path, model_dir, verdict_server, "writing_rl", experiment, *args,
                                      "trainer.resume_mode=resume_path",
                                      f"trainer.resume_from_path={checkpoint}"), model_dir)
    try:
        assert resumed.trainer.global_steps == 1 and resumed.weights.loaded == [str(checkpoint / "actor")]
        assert read_index(index) == at_step_1
        resumed.training_step()
    finally:
        resumed.shutdown()
    steps = [(h["step"], h["id"]) for h in read_history(history_path(index))]
    assert steps == [(1, "p0"), (2, "p0")]  # step 2 again after the resume, not 1


@pytest.mark.slow
def test_failed_judgements_are_left_out_of_the_update(transfer_queue: None, model_dir: str,
                                                      verdict_server: JudgeServerProcess, tmp_path: Path) -> None:
    """Issue M19: a rollout whose judgement failed gets no gradient and does not shift its siblings' baseline."""
    ladder = ["ref QUALITY=3", "ref QUALITY=5"]
    pq.write_table(pa.Table.from_pylist([row(0, f"9,1,{JUDGE_FAIL},1", references=ladder),
                                         row(1, "9,9,1,1", references=ladder)]), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pylist([row(7, "9", references=ladder)]), tmp_path / "val.parquet")
    create_index([tmp_path / "train.parquet"], "wrl-fail", tmp_path / "running_file")
    harness = TrainerOnCpu(job_config(tmp_path, model_dir, verdict_server, "writing_rl", "wrl-fail",
                                      "algorithm.adv_estimator=grpo", "trainer.save_freq=-1"), model_dir)
    try:
        trajectories, metrics = harness.training_step()
    finally:
        harness.shutdown()
    failed = [t for t in trajectories.values() if t["extra"]["wrl_failed"]]
    assert len(failed) == 1 and failed[0]["trained_tokens"] == 0 and failed[0]["advantage"] == 0.0
    original_uid, _, own = failed[0]["uid"].partition("#no-signal-")
    assert own in trajectories  # a group of its own
    siblings = [t for t in trajectories.values() if t["uid"] == original_uid]
    assert len(siblings) == 3
    winner = next(t["advantage"] for t in siblings if t["reward"] == 1.0)
    losers = {round(t["advantage"], 4) for t in siblings if t["reward"] == 0.0}
    # GRPO over the three judged siblings (1, 0, 0): the winner is twice as far from the mean as each loser
    assert len(losers) == 1 and winner == pytest.approx(-2 * losers.pop(), rel=1e-3)
    assert metrics["writing_rl/failure_rate"] == pytest.approx(1 / 8)
