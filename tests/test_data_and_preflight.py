"""`writing-rl data build` and `writing-rl preflight` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from writing_rl.testing.cli_runner import call_cli
from writing_rl.testing.server_process import JudgeServerProcess

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "writing_prompts.jsonl"


cli = call_cli


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_build_writes_verl_rows(tmp_path: Path) -> None:
    result = cli("data", "build", str(EXAMPLES), "--out-dir", str(tmp_path), "--test-size", "2")
    assert result.returncode == 0, result.stderr
    train = pq.read_table(tmp_path / "train.parquet").to_pylist()
    test = pq.read_table(tmp_path / "test.parquet").to_pylist()
    assert len(train) == 4 and len(test) == 2
    row = train[0]
    assert row["data_source"] == "writing" and row["prompt"][-1]["role"] == "user"
    ground_truth = row["reward_model"]["ground_truth"]
    assert isinstance(ground_truth["target"], list) and len(ground_truth["target"]) == 3
    assert ground_truth["id"] == row["extra_info"]["index"] and isinstance(ground_truth["id"], str)
    assert {r["extra_info"]["split"] for r in test} == {"test"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a", "prompt": "p", "references": "one string"}], "row 1: 'references' is a single string"),
        ([{"id": "a", "references": ["r"]}], "row 1: missing field 'prompt'"),
        ([{"id": "a", "prompt": "  ", "references": ["r"]}], "row 1: field 'prompt' is empty"),
        ([{"id": "a", "prompt": "p"}], "row 1: missing or empty 'references'"),
        ([{"id": "a", "prompt": "p", "references": ["r", ""]}], r"row 1: references\[1\] must be a non-empty"),
        ([{"id": "a", "prompt": "p", "references": ["r"]}, {"id": "a", "prompt": "q", "references": ["r"]}],
         "row 2: duplicate id 'a' \\(first in row 1\\)"),
        (['{"id": "a", "prompt": '], "line 1: not valid JSON"),
    ],
)
def test_build_rejects_bad_rows_naming_the_row(tmp_path: Path, rows: list[Any], message: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = cli("data", "build", str(source), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert str(source) in result.stderr
    import re

    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "out" / "train.parquet").exists()


def test_build_prompt_only_data_for_brpo(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Write a poem"}, {"prompt": "Write a story"}])
    assert cli("data", "build", str(source), "--out-dir", str(tmp_path), "--no-references").returncode == 0
    rows = pq.read_table(tmp_path / "train.parquet").to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == ["0", "1"]
    assert rows[0]["reward_model"]["ground_truth"]["target"] is None


@pytest.fixture(scope="module")
def built_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    assert cli("data", "build", str(EXAMPLES), "--out-dir", str(out), "--test-size", "2").returncode == 0
    return out


def preflight(env: dict[str, str], *overrides: str) -> subprocess.CompletedProcess[str]:
    return cli("preflight", "scripts/train_brpo.sh", *overrides, env=env)


def test_preflight_passes_on_sample_data(built_data: Path) -> None:
    with JudgeServerProcess(mode="scores") as server:
        result = preflight({"TRAIN_FILE": str(built_data / "train.parquet"),
                            "VAL_FILE": str(built_data / "test.parquet"), "JUDGE_BASE_URL": server.base_url,
                            "JUDGE_MODEL": "test-judge"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preflight passed" in result.stdout and "[ok] judge reachable" in result.stdout


def _broken_parquet(tmp_path: Path, built_data: Path) -> Path:
    rows = pq.read_table(built_data / "train.parquet").to_pylist()
    rows[2]["extra_info"]["index"] = rows[0]["extra_info"]["index"]
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "dup.parquet")
    return tmp_path / "dup.parquet"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_file", "[FAIL] data.train_files: \n    /nonexistent/train.parquet: file not found"),
        ("duplicate_id", "row 3: duplicate id 'w"),
        ("bad_template", "unknown placeholder(s) ['{answer}']"),
        ("wrong_template_format", "declares output = 'verdict' but this use needs 'scores'"),
        ("unreachable_judge", "[FAIL] judge reachable: http://127.0.0.1:9/v1"),
        ("remote_judge_without_key", "[FAIL] API key variable MY_KEY: not set: export MY_KEY=..."),
        ("unknown_reward_kwarg", "reward.reward_kwargs.brpo: unknown key(s) ['vote']"),
        ("unknown_config_key", "[FAIL] verl config composes"),
    ],
)
def test_preflight_fails_clearly(tmp_path: Path, built_data: Path, case: str, expected: str) -> None:
    env = {"TRAIN_FILE": str(built_data / "train.parquet"), "VAL_FILE": str(built_data / "test.parquet"),
           "JUDGE_BASE_URL": "http://127.0.0.1:9/v1"}
    overrides: list[str] = []
    if case == "missing_file":
        env["TRAIN_FILE"] = "/nonexistent/train.parquet"
    elif case == "duplicate_id":
        env["TRAIN_FILE"] = str(_broken_parquet(tmp_path, built_data))
    elif case == "bad_template":
        bad = tmp_path / "bad.toml"
        bad.write_text('output = "scores"\nuser = """{prompt} {response_a} {response_b} {answer} \\\\boxed{a, b}"""\n')
        env["GENRM_TEMPLATE"] = str(bad)
    elif case == "wrong_template_format":
        env["GENRM_TEMPLATE"] = "pairwise"
    elif case == "remote_judge_without_key":
        env.update(JUDGE_BASE_URL="https://judge.example.invalid/v1", JUDGE_API_KEY_ENV="MY_KEY")
        overrides.append("--skip-judge")
    elif case == "unknown_reward_kwarg":
        overrides.append("+reward.reward_kwargs.brpo.vote=3")
    elif case == "unknown_config_key":
        overrides.append("trainer.no_such_key=1")
    result = cli("preflight", "scripts/train_brpo.sh", *[o for o in overrides if o != "--skip-judge"],
                 *(["--skip-judge"] if "--skip-judge" in overrides else []), env=env)
    assert result.returncode == 1, result.stdout
    assert expected in result.stdout, result.stdout
    assert "preflight failed" in result.stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("ok", "[ok] index file"),
        ("index_missing_id", "ids of the training data missing from it: ['w"),
        ("index_rung_out_of_range", "rung 9 is beyond its 3 reference(s) (valid: 0..2)"),
        ("index_unknown_id", "key 'nope' is not an id of the training data"),
        ("index_bad_json", "not valid JSON"),
        ("no_references", "reward_model.ground_truth.target is empty: Writing-RL needs at least one reference"),
        ("bad_criteria_template", "declares output = 'scores' but this use needs 'verdict'"),
        ("bad_position", "reward_kwargs.writing_rl.position='middle'"),
    ],
)
def test_preflight_writing_rl(tmp_path: Path, built_data: Path, case: str, expected: str) -> None:
    run_dir = tmp_path / "running_file"
    env = {"TRAIN_FILE": str(built_data / "train.parquet"), "VAL_FILE": str(built_data / "test.parquet"),
           "RUN_DIR": str(run_dir), "EXPERIMENT_NAME": "exp", "JUDGE_API_KEY_ENV": "SOME_KEY", "SOME_KEY": "k"}
    ids = [r["extra_info"]["index"] for r in pq.read_table(built_data / "train.parquet").to_pylist()]
    index = {i: 0 for i in ids}
    overrides = ["--skip-judge"]
    if case == "index_missing_id":
        index.pop(ids[0])
    elif case == "index_rung_out_of_range":
        index[ids[1]] = 9
    elif case == "index_unknown_id":
        index["nope"] = 0
    elif case == "no_references":
        rows = pq.read_table(built_data / "train.parquet").to_pylist()
        rows[1]["reward_model"]["ground_truth"]["target"] = []
        import pyarrow as pa

        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "noref.parquet")
        env["TRAIN_FILE"] = str(tmp_path / "noref.parquet")
    elif case == "bad_criteria_template":
        env["JUDGE_CRITERIA_TEMPLATE"] = "genrm"
    elif case == "bad_position":
        env["REWARD_STRATEGY"] = "middle"
    run_dir.mkdir()
    (run_dir / "index_exp.json").write_text("{" if case == "index_bad_json" else json.dumps(index))
    result = cli("preflight", "scripts/train_writing_rl.sh", *overrides, env=env)
    assert expected in result.stdout, result.stdout
    assert result.returncode == (0 if case == "ok" else 1), result.stdout
