"""`writing-rl preflight` on the GenRM scripts (real subprocesses, real files, a tiny local model folder):
train_genrm_sft.sh composes verl's sft_trainer_engine.yaml and runs every row through verl's own SFT dataset;
train_genrm_rl.sh composes ppo_trainer.yaml, passes verl's validate_config and loads the reward via verl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from writing_rl.prompts import load_template
from writing_rl.testing.cli_runner import REPO, call_cli
from writing_rl.testing.trainer_on_cpu import tiny_model_dir

SFT_SCRIPT, RL_SCRIPT = "scripts/train_genrm_sft.sh", "scripts/train_genrm_rl.sh"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny_model")))


def sft_row(i: int) -> dict[str, Any]:
    messages = load_template("genrm").render(prompt=f"Write story {i}.", response_a="A quiet story.",
                                             response_b="A loud story.")
    return {"messages": [*messages, {"role": "assistant", "content": f"Principles ... \\boxed{{{i % 9 + 1}, 5}}"}],
            "pair_id": f"p{i}"}  # extra columns are fine for verl's dataset


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def test_sft_preflight_passes_with_verls_config_and_dataset(model_dir: str, tmp_path: Path) -> None:
    env = {"MODEL_PATH": model_dir, "TRAIN_FILE": write(tmp_path / "train.parquet", [sft_row(i) for i in range(6)]),
           "VAL_FILE": write(tmp_path / "val.parquet", [sft_row(9)]), "TRAIN_BATCH_SIZE": "4"}
    result = call_cli("preflight", SFT_SCRIPT, env=env)
    assert "overrides on verl's sft_trainer_engine.yaml" in result.stdout
    assert "[ok] verl configs: engine, optim, checkpoint and profiler build" in result.stdout
    assert f"[ok] verl model config: {model_dir}: config and tokenizer load" in result.stdout
    assert f"[ok] data.train_files: {tmp_path / 'train.parquet'}: 6 rows" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_sft_preflight_names_bad_rows_long_rows_and_bad_values(model_dir: str, tmp_path: Path) -> None:
    no_trace = sft_row(1)
    no_trace["messages"] = no_trace["messages"][:-1]
    odd_role = sft_row(2)
    odd_role["messages"][0]["role"] = "critic"
    env = {"MODEL_PATH": model_dir, "TRAIN_FILE": write(tmp_path / "train.parquet", [sft_row(0), no_trace, odd_role]),
           "VAL_FILE": write(tmp_path / "val.parquet", [sft_row(3)]), "MAX_LENGTH": "64",
           "MAX_TOKEN_LEN_PER_GPU": "64"}
    result = call_cli("preflight", SFT_SCRIPT, "optim.lr_scheduler_type=linear", env=env)
    out = result.stdout
    assert ("[FAIL] verl optim config: verl's verl.workers.config.FSDPOptimizerConfig refuses it: AssertionError: a "
            "check failed; overrides of this section: ") in out and "optim.lr_scheduler_type=linear" in out
    assert (f"{tmp_path / 'train.parquet'}, row 2: the last message is 'user', not 'assistant': only assistant "
            "turns are learned") in out
    assert f"{tmp_path / 'train.parquet'}, row 3: messages[0].role='critic'; use one of" in out
    assert (f"{tmp_path / 'val.parquet'}, row 1: ValueError: sequence_length=") in out and \
        "is larger than self.max_length=64 (raise MAX_LENGTH, or TRUNCATION=left|right)" in out
    assert result.returncode == 1


@pytest.fixture(scope="module")
def rl_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("genrm_rl")
    assert call_cli("data", "pairs", str(REPO / "examples" / "litbench_sample.csv"), "--out-dir", str(folder / "pairs"),
                   "--test-size", "1").returncode == 0
    assert call_cli("data", "genrm-rl", str(folder / "pairs"), "--out-dir", str(folder / "rl")).returncode == 0
    return folder / "rl"


def test_rl_preflight_passes_verls_validate_config_with_the_default_settings(model_dir: str, rl_data: Path) -> None:
    env = {"MODEL_PATH": model_dir, "TRAIN_FILE": str(rl_data / "train.parquet"),
           "VAL_FILE": str(rl_data / "test.parquet")}
    result = call_cli("preflight", RL_SCRIPT, env=env)
    out = result.stdout
    assert "[ok] names resolve: reward manager NaiveRewardManager, estimator grpo, trainer mode genrm_rl" in out
    assert ("[ok] per-step metrics: trainer mode genrm_rl, data.shuffle=False, even data.train_batch_size=64"
            in out)
    assert "[ok] verl validate_config: passed" in out
    assert ("[ok] reward function: pkg://writing_rl.genrm.reward:compute_score via verl's loader (right 1, wrong -1, "
            "malformed -1.5) in manager naive") in out
    assert f"[ok] data.train_files: {rl_data / 'train.parquet'}: 6 rows" in out
    assert "[ok] prompt lengths: every prompt fits data.max_prompt_length=4096" in out
    assert "judge" not in out  # no judge in this job
    assert result.returncode == 0, out + result.stderr


def test_rl_preflight_fails_on_wrong_rows_reward_name_and_what_verl_rejects(model_dir: str, rl_data: Path,
                                                                            tmp_path: Path) -> None:
    rows = pq.read_table(rl_data / "train.parquet").to_pylist()
    rows[1]["reward_model"]["ground_truth"]["preferred"] = "chosen"
    env = {"MODEL_PATH": model_dir, "TRAIN_FILE": write(tmp_path / "train.parquet", rows),
           "VAL_FILE": str(rl_data / "train.parquet")}
    result = call_cli("preflight", RL_SCRIPT, "reward.custom_reward_function.name=compute_scor",
                     "actor_rollout_ref.actor.use_dynamic_bsz=False", env=env)
    out = result.stdout
    assert ("[FAIL] verl validate_config: verl rejects this config before training: AssertionError: [actor] Please "
            "set at least one of 'actor.ppo_micro_batch_size' or 'actor.ppo_micro_batch_size_per_gpu'") in out
    assert "[FAIL] reward function: AttributeError: Object not found in module: object_name='compute_scor'" in out
    assert (f"{tmp_path / 'train.parquet'}, row 2: reward_model.ground_truth={{'preferred': 'chosen'}} must be "
            "{'preferred': 'A' | 'B'}") in out
    assert "[FAIL] train/validation split: 3 pair id(s) in both data.train_files and data.val_files" in out
    assert result.returncode == 1


def test_M18_sft_preflight_refuses_validation_rows_that_are_training_rows(tmp_path: Path) -> None:
    """VAL_FILE = TRAIN_FILE used to pass; the RL script refuses the same overlap."""
    train = write(tmp_path / "train.parquet", [sft_row(i) for i in range(4)])
    out = call_cli("preflight", SFT_SCRIPT, env={"MODEL_PATH": "Some/HubModel", "TRAIN_FILE": train,
                                                 "VAL_FILE": train, "TRAIN_BATCH_SIZE": "4"}).stdout
    assert "[FAIL] train/validation split: 4 of the validation rows are also training rows" in out


def test_M19_a_non_numeric_judge_gpu_count_is_named(tmp_path: Path) -> None:
    """JUDGE=verl GENRM_GPUS=abc used to end in bash's `abc: unbound variable`."""
    result = call_cli("preflight", "scripts/train_brpo.sh",
                      env={"JUDGE": "verl", "GENRM_GPUS": "abc", "GENRM_PATH": str(tmp_path)})
    assert result.returncode != 0 and "GENRM_GPUS=abc: must be a whole number" in result.stdout + result.stderr
    assert "unbound variable" not in result.stdout + result.stderr


def test_sft_preflight_without_a_local_model_still_checks_data_and_batch_size(tmp_path: Path) -> None:
    env = {"MODEL_PATH": "Some/HubModel", "TRAIN_FILE": write(tmp_path / "train.parquet", [sft_row(0), sft_row(1)]),
           "VAL_FILE": write(tmp_path / "val.parquet", [{"conversation": sft_row(2)["messages"]}])}
    out = call_cli("preflight", SFT_SCRIPT, env=env).stdout
    assert "[skip] verl model config: model.path=Some/HubModel is not a local folder with a config.json" in out
    assert f"[ok] data.train_files: {tmp_path / 'train.parquet'}: 2 rows (not tokenized: no local model folder)" in out
    assert (f"[FAIL] batch sizes: {tmp_path / 'train.parquet'}: 2 rows, fewer than data.train_batch_size=32: verl "
            "drops the incomplete batch, so nothing would train") in out
    assert f"[FAIL] data.val_files: {tmp_path / 'val.parquet'}: no 'messages' column (data.messages_key)" in out
    assert "preflight failed: 2 problem(s)" in out
