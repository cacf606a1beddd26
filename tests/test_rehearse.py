"""`writing-rl rehearse`: a broken job fails with the part to fix named, before verl starts where preflight can tell
and from the job's own first error where it cannot; nothing is written outside its folder; no key in its files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from writing_rl.cli.rehearse import verdict
from writing_rl.cpu.job_log import first_error
from writing_rl.cpu.rehearsal import (
    JobResult,
    RehearsalError,
    RehearsalRequest,
    files_holding_key,
    preflight,
    prepare,
)
from writing_rl.testing.server_process import JudgeServerProcess

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from writing_rl.data.build import build_parquet
    from writing_rl.genrm.rl_rows import build_genrm_rl

    folder = tmp_path_factory.mktemp("rehearse_data")
    for out, references in (("writing", True), ("brpo", False)):
        build_parquet(REPO / "examples/writing_prompts.jsonl", folder / out, test_size=2,
                      require_references=references)
    build_genrm_rl(REPO / "examples/pairs.jsonl", folder / "genrm")
    table = pq.read_table(folder / "brpo/train.parquet")
    pq.write_table(table.drop(["prompt"]), folder / "no_prompt.parquet")
    return folder


def rehearsal_error(monkeypatch: pytest.MonkeyPatch, script: str, env: dict[str, str], out_dir: Path,
                    local_judge: str | None = None, **request: object) -> RehearsalError:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RehearsalError) as caught:
        job = prepare(RehearsalRequest(script=REPO / script, overrides=[], out_dir=out_dir,
                                       local_judge_url=local_judge, **request))
        preflight(job)
    return caught.value


def test_a_bad_model_path_is_the_model(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    error = rehearsal_error(monkeypatch, "scripts/train_brpo.sh", {"TRAIN_FILE": str(data_dir / "brpo/train.parquet")},
                            tmp_path, model=tmp_path / "no-such-model")
    assert error.part == "model" and "no-such-model is not a local model folder (no config.json)" in error.message


def test_a_judge_that_is_down_is_the_judge(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TRAIN_FILE": str(data_dir / "brpo/train.parquet"), "VAL_FILE": str(data_dir / "brpo/test.parquet"),
           "JUDGE_BASE_URL": "http://127.0.0.1:9/v1"}
    error = rehearsal_error(monkeypatch, "scripts/train_brpo.sh", env, tmp_path)
    assert error.part == "judge" and "http://127.0.0.1:9/v1" in error.message


def test_data_missing_a_column_is_the_data(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with JudgeServerProcess(mode="scores") as judge:
        env = {"TRAIN_FILE": str(data_dir / "no_prompt.parquet"), "VAL_FILE": str(data_dir / "brpo/test.parquet")}
        error = rehearsal_error(monkeypatch, "scripts/train_brpo.sh", env, tmp_path, judge.base_url)
    assert error.part == "data" and "no_prompt.parquet, row 1: prompt must be a non-empty list" in error.message


def test_a_batch_that_splits_a_pairs_orders_is_the_data(data_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """GenRM RL needs both orders of a pair in one step: an odd batch cannot hold them."""
    from writing_rl.cpu.job import CpuJobShape

    env = {"TRAIN_FILE": str(data_dir / "genrm/train.parquet"), "VAL_FILE": str(data_dir / "genrm/train.parquet")}
    error = rehearsal_error(monkeypatch, "scripts/train_genrm_rl.sh", env, tmp_path,
                            shape=CpuJobShape(batch_size=3))
    assert error.part == "data" and "data.train_batch_size=3 is odd" in error.message


def test_a_key_in_any_file_fails_the_verdict(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with JudgeServerProcess(mode="scores") as judge:
        for key, value in {"TRAIN_FILE": str(data_dir / "brpo/train.parquet"),
                           "VAL_FILE": str(data_dir / "brpo/test.parquet")}.items():
            monkeypatch.setenv(key, value)
        job = prepare(RehearsalRequest(script=REPO / "scripts/train_brpo.sh", overrides=[], out_dir=tmp_path,
                                       local_judge_url=judge.base_url))
    key = job.environment[job.key_env]
    assert files_holding_key(job) == []
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "data": {}}\n{"step": 2, "data": {}}\n')
    (tmp_path / "job.log").write_text(f"Authorization: Bearer {key}\n")
    ok, line = verdict(job, JobResult(0, [{"step": 1, "data": {}}, {"step": 2, "data": {}}], 1.0, 2.0, None), 2)
    assert not ok and "API key is written in" in line and "job.log" in line


def test_rehearsal_writes_nothing_into_the_scripts_run_dir(data_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    users_run_dir = tmp_path / "users_running_file"
    with JudgeServerProcess(mode="verdict") as judge:
        for key, value in {"TRAIN_FILE": str(data_dir / "writing/train.parquet"), "ALGO": "grpo", "ROLLOUT_N": "4",
                           "VAL_FILE": str(data_dir / "writing/test.parquet"), "RUN_DIR": str(users_run_dir),
                           "EXPERIMENT_NAME": "mine"}.items():
            monkeypatch.setenv(key, value)
        job = prepare(RehearsalRequest(script=REPO / "scripts/train_writing_rl.sh", overrides=[],
                                       out_dir=tmp_path / "rehearsal", local_judge_url=judge.base_url))
    assert not users_run_dir.exists()
    run_dir = (tmp_path / "rehearsal/run").resolve()
    assert f"++reward.reward_kwargs.run_dir={run_dir}" in job.overrides
    assert f"++reward.reward_kwargs.judge.cache_path={run_dir / 'judge_cache.sqlite'}" in job.overrides
    assert (run_dir / "index_mine.json").is_file()
    assert f"trainer.default_local_dir={(tmp_path / 'rehearsal').resolve() / 'checkpoints'}" in job.overrides


CRITIC_FAILURE = """\
ray.exceptions.RayTaskError(RuntimeError): \x1b[36mray::TaskRunnerV1.run()\x1b[39m (pid=5098, ip=192.0.2.2)
  File "/venv/lib/python3.11/site-packages/verl/trainer/main_ppo.py", line 160, in run
ray.exceptions.RayTaskError(RuntimeError): \x1b[36mray::WorkerDict.critic_reset()\x1b[39m (pid=5293, ip=192.0.2.2)
  File "/venv/lib/python3.11/site-packages/transformers/modeling_utils.py", line 2012, in _check_and_adjust_attn
ImportError: FlashAttention2 has been toggled on, but it cannot be used due to the following error: the package for \
FlashAttention2 doesn't seem to be installed.

The above exception was the direct cause of the following exception:
RuntimeError: model(/tmp/tiny1) is not a value head model, please install trl to make it valid
"""


def test_the_first_real_error_is_reported_not_the_ray_stack_around_it() -> None:
    error = first_error(CRITIC_FAILURE.splitlines())
    assert error is not None and error.part == "critic"
    assert error.message.startswith("ImportError: FlashAttention2 has been toggled on")
    hydra = first_error(["Could not override 'critic.model.fsdp_config.strategy'.", "Key 'fsdp_config' not in struct"])
    assert hydra is not None and hydra.part == "config"


DATA_LOADER_FAILURE = """\
\x1b[36m(TaskRunnerV1 pid=23411)\x1b[0m Training Progress:   0%|          | 0/2 [00:00<?, ?it/s]
ray.exceptions.RayTaskError(KeyError): \x1b[36mray::TaskRunnerV1.run()\x1b[39m (pid=23411, ip=192.0.2.2)
  File "/venv/lib/python3.11/site-packages/verl/trainer/main_ppo.py", line 160, in run
  File "/venv/lib/python3.11/site-packages/torch/utils/data/_utils/fetch.py", line 54, in fetch
  File "/venv/lib/python3.11/site-packages/verl/utils/dataset/rl_dataset.py", line 313, in _build_messages
KeyError: 'prompt'
"""


def test_an_error_in_verls_data_loader_is_the_data() -> None:
    error = first_error(DATA_LOADER_FAILURE.splitlines())
    assert error is not None and (error.part, error.message) == ("data", "KeyError: 'prompt'")


@pytest.mark.slow
def test_rehearse_command_names_the_part_that_failed_and_writes_only_its_folder(tmp_path: Path) -> None:
    """The command line itself: verl's job starts and its own config check refuses it (preflight skipped, so verl
    meets the problem), one verdict line, exit code 1, the job's log kept, and nothing written outside --out-dir (run
    from an empty folder: afterwards it holds only that folder)."""
    result = subprocess.run([sys.executable, "-m", "writing_rl.cli", "rehearse", str(REPO / "scripts/train_brpo.sh"),
                             "actor_rollout_ref.actor.use_dynamic_bsz=False", "--judge", "local", "--out-dir", "out",
                             "--skip-preflight"],
                            cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    last = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert last.startswith("rehearsal failed in the config: ") and "micro_batch_size" in last, last
    assert "micro_batch_size" in (tmp_path / "out/job.log").read_text()
    assert "Traceback" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
