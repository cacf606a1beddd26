"""`writing-rl judge ...` and `doctor` as a user runs them: real subprocesses, real server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from writing_rl.testing.cli_runner import call_cli, run_cli
from writing_rl.testing.local_llm import LocalLLMServer, llama_server_available
from writing_rl.testing.server_process import JudgeServerProcess

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "examples" / "pairs.jsonl"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return call_cli(*args, env=env)


def write_pairs(path: Path, n: int) -> Path:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": i, "prompt": f"Write {i}", "chosen": f"QUALITY=8 good {i}",
                                     "rejected": f"QUALITY=2 {'padding ' * (i + 1)}"}) + "\n")
    return path


def test_judge_eval_reports_and_resumes_from_cache(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    args = ["judge", "eval", "--pairs", str(pairs), "--json", "--base-url", judge_server.base_url,
            "--model", "test-judge", "--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "out.jsonl")]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["pairs"] == 12 and summary["judgements"] == 24
    assert summary["accuracy_both_orders"] == 1.0 and summary["position_consistency"] == 1.0
    assert summary["first_position_win_rate"] == 0.5 and summary["tie_rate"] == 0.0
    assert summary["mean_words_preferred"] < summary["mean_words_rejected"]
    assert summary["http_requests"] == 24 and summary["prompt_tokens"] > 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(r["accurate"] for r in records)
    assert judge_server.stats()["requests"] == 24

    second = cli(*args)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["http_requests"] == 0
    assert json.loads(second.stdout)["cached_judgements"] == 24
    assert judge_server.stats()["requests"] == 24


def test_judge_eval_exposes_position_bias(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    judge_server.configure(first_position_bonus=10.0)  # always prefers whatever is shown first
    pairs = write_pairs(tmp_path / "pairs.jsonl", 6)
    result = cli("judge", "eval", "--pairs", str(pairs), "--json", "--base-url", judge_server.base_url)
    summary = json.loads(result.stdout)
    assert summary["first_position_win_rate"] == 1.0
    assert summary["accuracy_both_orders"] == 0.0 and summary["position_consistency"] == 0.0
    assert summary["accuracy_per_judgement"] == 0.5


def test_judge_eval_counts_parse_and_judge_failures(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    judge_server.script({"kind": "text", "text": "I like both."}, "bad_request")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    summary = json.loads(cli("judge", "eval", "--pairs", str(pairs), "--json", "--base-url",
                             judge_server.base_url, "--max-concurrency", "1").stdout)
    assert summary["parse_failures"] == 1 and summary["judge_failures"] == 1


def test_judge_eval_bad_rows_name_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": "p", "chosen": ""}\n')
    result = cli("judge", "eval", "--pairs", str(bad))
    assert result.returncode == 2
    assert f"{bad}, row 2: field 'chosen' is empty" in result.stderr
    bad.write_text("not json\n")
    assert f"{bad}, line 1: not valid JSON" in cli("judge", "eval", "--pairs", str(bad)).stderr


def test_judge_try_shows_verdict_tokens_latency_and_no_key(judge_server: JudgeServerProcess) -> None:
    secret = "sk-cli-secret-987654321"
    result = cli("-v", "judge", "try", "--prompt", "Write a poem", "--a", "QUALITY=3 meh", "--b", "QUALITY=9 wow",
                 "--base-url", judge_server.base_url, "--api-key-env", "MY_JUDGE_KEY",
                 env={"MY_JUDGE_KEY": secret})
    assert result.returncode == 0, result.stderr
    assert "verdict:    B" in result.stdout and "tokens:" in result.stdout and "latency:" in result.stdout
    assert secret not in result.stdout + result.stderr
    assert judge_server.stats()["last_authorization"] == f"Bearer {secret}"


def test_judge_try_with_scores_template(tmp_path: Path) -> None:
    with JudgeServerProcess(mode="scores") as server:
        result = cli("judge", "try", "--template", "genrm", "--prompt", "p", "--a", "QUALITY=7", "--b", "QUALITY=4",
                     "--base-url", server.base_url)
    assert "verdict:    A" in result.stdout and "scores:     A=7 B=4" in result.stdout


def test_help_explains_every_command() -> None:
    on_the_command_line = run_cli("--help")
    assert on_the_command_line.returncode == 0 and "rehearse" in on_the_command_line.stdout
    for args in (["judge", "--help"], ["rehearse", "--help"], ["model", "smollm2", "--help"],
                 ["judge", "try", "--help"], ["judge", "eval", "--help"], ["doctor", "--help"],
                 ["data", "build", "--help"], ["index", "create", "--help"],
                 ["index", "show", "--help"], ["index", "diff", "--help"], ["preflight", "--help"],
                 ["genrm", "--help"], ["genrm", "synthesize", "--help"], ["judge", "compare", "--help"]):
        result = cli(*args)
        assert result.returncode == 0 and "usage: writing-rl" in result.stdout


@pytest.mark.slow
def test_doctor_passes_with_reachable_judge(judge_server: JudgeServerProcess) -> None:
    result = cli("doctor", "--base-url", judge_server.base_url, "--model", "test-judge",
                 env={"JUDGE_API_KEY": "x"})
    assert result.returncode == 0, result.stdout + result.stderr
    for where in ("a fresh process", "a Ray worker"):
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"[ok] registered in {where}"))
        for name in ("reward manager 'brpo'", "reward manager 'writing_rl'", "advantage estimator 'brpo'",
                     "trainer mode 'writing_rl'"):
            assert name in line
    assert "[ok] judge reachable" in result.stdout


@pytest.mark.slow
def test_doctor_fails_clearly_on_unreachable_judge_and_wrong_model(judge_server: JudgeServerProcess) -> None:
    result = cli("doctor", "--skip-ray", "--base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 1 and "[FAIL] judge reachable: http://127.0.0.1:9/v1" in result.stdout
    result = cli("doctor", "--skip-ray", "--base-url", judge_server.base_url, "--model", "gpt-9")
    assert result.returncode == 1 and "'gpt-9' is not among them" in result.stdout


@pytest.mark.skipif(not llama_server_available(), reason="llama-cpp-python[server] not installed (make demo)")
def test_real_local_model_end_to_end(tmp_path: Path) -> None:
    """SmolLM2-135M under llama.cpp: a real model, the real CLI, grammar-constrained verdicts."""
    with LocalLLMServer() as server:
        result = cli("judge", "eval", "--pairs", str(PAIRS), "--limit", "2", "--json",
                     "--base-url", server.base_url, "--model", server.model_alias, "--output-constraint", "llama.cpp",
                     "--max-concurrency", "1", "--max-tokens", "120", "--temperature", "0")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["judgements"] == 4 and summary["judge_failures"] == 0 and summary["parse_failures"] == 0
