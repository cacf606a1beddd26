"""Preflight's checks of what verl would silently accept or silently change (real subprocesses, real files):
prompt lengths (M8), misspelt added keys (M9), a bad value named by its key (M10), train/validation overlap
(A5), bad history lines (C10), a keyless loopback judge (M6), BRPO validation rows without references."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from writing_rl.testing.cli_runner import REPO, call_cli
from writing_rl.testing.trainer_on_cpu import tiny_model_dir

EXAMPLES = REPO / "examples" / "writing_prompts.jsonl"
cli = call_cli


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    out = tmp_path / "data"
    assert cli("data", "build", str(EXAMPLES), "--out-dir", str(out), "--test-size", "2").returncode == 0
    return out


def env_for(data: Path, model_dir: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"TRAIN_FILE": str(data / "train.parquet"), "VAL_FILE": str(data / "test.parquet"),
            "MODEL_PATH": model_dir, "RUN_DIR": str(tmp_path / "run"), "EXPERIMENT_NAME": "exp",
            "JUDGE_API_KEY_ENV": "SOME_KEY", "SOME_KEY": "k", **extra}


def test_clean_run_passes_with_verls_checks(data: Path, model_dir: str, tmp_path: Path) -> None:
    result = cli("preflight", "scripts/train_writing_rl.sh", "--skip-judge", env=env_for(data, model_dir, tmp_path))
    assert "[ok] verl validate_config: passed" in result.stdout
    assert "[ok] prompt lengths: every prompt fits data.max_prompt_length=4096" in result.stdout
    assert "[ok] verl trainer fit" in result.stdout
    assert result.returncode == 0, result.stdout


def test_M8_prompts_longer_than_max_prompt_length_are_named(data: Path, model_dir: str, tmp_path: Path) -> None:
    result = cli("preflight", "scripts/train_writing_rl.sh", "--skip-judge",
                 env=env_for(data, model_dir, tmp_path, MAX_PROMPT_LENGTH="8"))
    expected = "[FAIL] prompt lengths: longer than data.max_prompt_length=8, so verl's agent loop cuts them"
    assert expected in result.stdout
    assert "train.parquet, row 1 (id " in result.stdout and "tokens" in result.stdout
    assert result.returncode == 1


def test_M9_misspelt_added_key_fails_with_a_suggestion(data: Path, model_dir: str, tmp_path: Path) -> None:
    result = cli("preflight", "scripts/train_writing_rl.sh", "+actor_rollout_ref.rollout.temprature=0.7",
                 "--skip-judge", env=env_for(data, model_dir, tmp_path))
    assert ("[FAIL] added config keys: +actor_rollout_ref.rollout.temprature: verl has no such key, so the value "
            "would be ignored; did you mean actor_rollout_ref.rollout.temperature?") in result.stdout
    assert result.returncode == 1


def test_M10_a_bad_value_names_its_key(data: Path, tmp_path: Path) -> None:
    result = cli("preflight", "scripts/train_writing_rl.sh", "data.train_batch_size=abc", "--skip-judge",
                 env=env_for(data, "Some/HubModel", tmp_path))
    assert "data.train_batch_size='abc' must be an integer" in result.stdout
    assert result.returncode == 1


def test_A5_validation_ids_that_are_also_training_ids_fail(data: Path, model_dir: str, tmp_path: Path) -> None:
    shutil.copy(data / "train.parquet", tmp_path / "val.parquet")
    result = cli("preflight", "scripts/train_writing_rl.sh", "--skip-judge",
                 env=env_for(data, model_dir, tmp_path, VAL_FILE=str(tmp_path / "val.parquet")))
    assert "[FAIL] train/validation split: 4 id(s) are in both data.train_files and data.val_files" in result.stdout
    assert result.returncode == 1


def test_C10_bad_history_lines_are_reported_before_training(data: Path, model_dir: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    ids = [r["extra_info"]["index"] for r in pq.read_table(data / "train.parquet").to_pylist()]
    (run / "index_exp.json").write_text(json.dumps(dict.fromkeys(ids, 0)))
    good = '{"step": 1, "id": "w1", "from": 0, "to": 1}'
    (run / "index_exp.history.jsonl").write_text(f'{good}\n[1, 2]\n{{"step": 2, "id"')
    result = cli("preflight", "scripts/train_writing_rl.sh", "--skip-judge", env=env_for(data, model_dir, tmp_path))
    assert "[warn] index history:" in result.stdout
    assert "index_exp.history.jsonl, line 2: expected a JSON object, got list; skipped" in result.stdout
    assert "line 3: incomplete last line" in result.stdout
    assert result.returncode == 0, result.stdout


def test_M6_loopback_judge_needs_no_key(data: Path, model_dir: str, tmp_path: Path) -> None:
    result = cli("preflight", "scripts/train_brpo.sh", "--skip-judge",
                 env=env_for(data, model_dir, tmp_path, JUDGE_API_KEY_ENV="NO_SUCH_KEY_VARIABLE", SOME_KEY=""))
    assert "[ok] API key variable NO_SUCH_KEY_VARIABLE: not set (a loopback judge needs none)" in result.stdout


def test_brpo_validation_rows_without_references_are_a_warning(data: Path, model_dir: str, tmp_path: Path) -> None:
    rows = pq.read_table(data / "test.parquet").to_pylist()
    for row in rows:
        row["reward_model"]["ground_truth"]["target"] = None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "val.parquet")
    result = cli("preflight", "scripts/train_brpo.sh", "--skip-judge",
                 env=env_for(data, model_dir, tmp_path, VAL_FILE=str(tmp_path / "val.parquet")))
    assert "[warn] validation data: 2 validation row(s) have no reference" in result.stdout
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", ["scripts/train_brpo.sh", "scripts/train_writing_rl.sh"])
def test_M5_scripts_refuse_a_key_given_as_the_variable_name_before_verl_prints_it(script: str, tmp_path: Path) -> None:
    secret = "sk-PROBE-SECRET-123"
    result = subprocess.run(["bash", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")},
                                 "JUDGE_API_KEY_ENV": secret, "RUN_DIR": str(tmp_path / "run")})
    assert result.returncode == 2
    assert "must be the NAME of the environment variable holding the key" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert not (tmp_path / "run").exists()  # stopped before anything was prepared or launched


def test_preflight_writes_no_judge_cache(data: Path, model_dir: str, tmp_path: Path, judge_server: Any) -> None:
    """Cosmetic finding: the reachability check used to create RUN_DIR/judge_cache_<exp>.sqlite."""
    result = cli("preflight", "scripts/train_brpo.sh",
                 env=env_for(data, model_dir, tmp_path, JUDGE_BASE_URL=judge_server.base_url, JUDGE_MODEL="test-judge"))
    assert "[ok] judge reachable" in result.stdout, result.stdout
    assert not list(tmp_path.rglob("*.sqlite"))
