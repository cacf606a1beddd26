"""`writing-rl judge try|eval` and `doctor` under bad input and bad endpoints (findings A4, C4, C5, C9,
M1, M2, M3, M5, M6, M17 and the CLI cosmetic items of notes/bad-input-findings.md).

Real files, the real loopback judge server, and real subprocesses where Ctrl-C and timing matter.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from writing_rl.cli.doctor import check_judge
from writing_rl.cli.main import build_parser, main
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeUnavailable
from writing_rl.judge.settings import JudgeSettings
from writing_rl.preflight.checks import check_api_key, check_judge_reachable
from writing_rl.testing.cli_runner import call_cli, cli_process, wait_for_requests
from writing_rl.testing.server_process import JudgeServerProcess

SECRET = "sk-PROBE-SECRET-123"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_pairs(path: Path, n: int, identical: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            rejected = f"QUALITY=8 good {i}" if i < identical else f"QUALITY=2 weak {i}"
            handle.write(json.dumps({"id": f"p{i}", "prompt": f"Write {i}", "chosen": f"QUALITY=8 good {i}",
                                     "rejected": rejected}) + "\n")
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A4 ------------------------------------------------------------------------------------------------

def test_A4_out_never_overwrites_pairs(judge_server: JudgeServerProcess, tmp_path: Path, clean_judge_env: None,
                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = write_pairs(tmp_path / "same_io.jsonl", 3)
    before = pairs.read_bytes()
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "judge", "eval", "--pairs", str(pairs), "--base-url", judge_server.base_url,
                       "--out", "./sub/../same_io.jsonl")
    assert code == 2 and "--out sub/../same_io.jsonl: is the --pairs file" in err
    assert pairs.read_bytes() == before and judge_server.stats()["requests"] == 0


def test_A4_out_checked_before_judging(judge_server: JudgeServerProcess, tmp_path: Path, clean_judge_env: None,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    (tmp_path / "cdir").mkdir()
    base = ["judge", "eval", "--pairs", str(pairs), "--base-url", judge_server.base_url]
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "cdir"))
    assert code == 2 and err == (f"writing-rl: error: --out {tmp_path / 'cdir'}: is a directory; give a file "
                                 f"name, e.g. {tmp_path / 'cdir' / 'results.jsonl'}\n")
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "afile" / "out.jsonl"))
    assert code == 2 and f"{tmp_path / 'afile'} is a file, not a folder" in err
    cache = tmp_path / "cache.sqlite"
    code, _, err = run(capsys, *base, "--cache", str(cache), "--out", str(cache))
    assert code == 2 and "is the --cache file" in err
    assert judge_server.stats()["requests"] == 0


# C4 ------------------------------------------------------------------------------------------------

def test_C4_at_file_errors_and_literal_at(judge_server: JudgeServerProcess, tmp_path: Path, clean_judge_env: None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    base = ["judge", "try", "--prompt", "p", "--base-url", judge_server.base_url, "--b", "QUALITY=1 b"]
    code, _, err = run(capsys, *base, "--a", "@nofile.txt")
    assert code == 2 and err == ("writing-rl: error: --a @nofile.txt: no file 'nofile.txt'; to pass text that "
                                 "starts with @, double it: --a '@@nofile.txt'\n")
    code, _, err = run(capsys, *base, "--a", f"@{tmp_path}")
    assert code == 2 and err == f"writing-rl: error: {tmp_path}: is a directory, not a file\n"
    code, out, err = run(capsys, *base, "--a", "@@home is where QUALITY=9")
    assert code == 0 and "verdict:    A" in out, err
    text = tmp_path / "a.txt"
    text.write_bytes(b"\xef\xbb\xbfQUALITY=9 from a file")  # M16: a BOM is accepted silently
    code, out, _ = run(capsys, *base, "--a", f"@{text}")
    assert code == 0 and "verdict:    A" in out
    text.write_bytes(b"caf\xe9")  # M14
    code, _, err = run(capsys, *base, "--a", f"@{text}")
    assert code == 2 and f"{text}, line 1: not valid UTF-8 (byte 0xe9 at column 4)" in err
    assert judge_server.stats()["requests"] == 2


def test_C4_help_documents_at_at(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["judge", "try", "--help"])
    assert "@@TEXT passes the literal text @TEXT" in " ".join(capsys.readouterr().out.split())


# C5 ------------------------------------------------------------------------------------------------

def test_C5_cache_not_a_database_is_one_line(tmp_path: Path, clean_judge_env: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", 1)
    not_db = tmp_path / "cachecopy.jsonl"
    not_db.write_text(pairs.read_text())
    before = not_db.read_bytes()
    code, _, err = run(capsys, "judge", "eval", "--pairs", str(pairs), "--cache", str(not_db))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"writing-rl: error: judge cache {not_db}: file is not a database; delete the file")
    assert not_db.read_bytes() == before
    code, _, err = run(capsys, "judge", "eval", "--pairs", str(pairs), "--cache", str(tmp_path))
    assert code == 2 and err.startswith(f"writing-rl: error: judge cache {tmp_path}: is a directory")


# C9 ------------------------------------------------------------------------------------------------

def assert_clean_stop(stderr: str) -> None:
    for noise in ("Traceback", "KeyboardInterrupt", "Server disconnected", "Unclosed", "retrying"):
        assert noise not in stderr, stderr


def test_C9_ctrl_c_during_eval_keeps_results_and_resumes(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    judge_server.configure(latency_s=0.4)
    pairs, cache, out = write_pairs(tmp_path / "pairs.jsonl", 20), tmp_path / "c.sqlite", tmp_path / "out.jsonl"
    args = ["judge", "eval", "--pairs", str(pairs), "--json", "--base-url", judge_server.base_url,
            "--max-concurrency", "2", "--cache", str(cache), "--out", str(out)]
    process = cli_process(*args)
    wait_for_requests(judge_server, 7)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert_clean_stop(stderr)
    summary = json.loads(stdout)
    done = summary["pairs"]
    assert 1 <= done < 20 and summary["judgements"] == 2 * done
    assert f"interrupted: {done} of 20 pair(s) judged" in stderr
    assert "rerun with the same --cache to resume" in stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == sorted((r["id"] for r in records), key=lambda i: int(i[1:]))
    assert len(records) == done and all(r["accurate"] for r in records)

    judge_server.configure(latency_s=0.0)
    paid_before = judge_server.stats()["requests"]
    process = cli_process(*args)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    resumed = json.loads(stdout)
    assert resumed["pairs"] == 20 and resumed["cached_judgements"] >= 2 * done
    assert resumed["http_requests"] == judge_server.stats()["requests"] - paid_before <= 40 - 2 * done
    assert len(out.read_text().splitlines()) == 20


def test_C9_ctrl_c_during_try(judge_server: JudgeServerProcess) -> None:
    judge_server.configure(latency_s=30.0)
    process = cli_process("judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--base-url",
                          judge_server.base_url)
    wait_for_requests(judge_server, 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert_clean_stop(stderr)
    assert stderr == "writing-rl: interrupted before the judge answered\n"


# M1 ------------------------------------------------------------------------------------------------

def test_M1_eval_exits_1_when_no_judgement_was_usable(judge_server: JudgeServerProcess, tmp_path: Path,
                                                     clean_judge_env: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    judge_server.configure(faults={"bad_request": 1.0})
    pairs = write_pairs(tmp_path / "pairs.jsonl", 3)
    code, out, err = run(capsys, "judge", "eval", "--pairs", str(pairs), "--json", "--base-url",
                         judge_server.base_url)
    assert code == 1 and json.loads(out)["judge_failures"] == 6
    assert "no judgement gave a verdict" in err
    judge_server.configure(faults={})
    code, out, _ = run(capsys, "judge", "eval", "--pairs", str(pairs), "--json", "--base-url",
                       judge_server.base_url)
    assert code == 0 and json.loads(out)["accuracy_both_orders"] == 1.0


def test_M1_try_exits_1_when_the_judgement_failed(judge_server: JudgeServerProcess, clean_judge_env: None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = ["judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--base-url", judge_server.base_url]
    judge_server.script("bad_request")
    code, _, err = run(capsys, *base)
    assert code == 1 and "judge failure: judge answered HTTP 400" in err
    judge_server.script({"kind": "text", "text": "I like both."})
    code, out, _ = run(capsys, *base)
    assert code == 1 and "verdict:    UNPARSEABLE" in out


# M2 ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["try", "eval"])
def test_M2_refused_connection_fails_fast_with_hint(tmp_path: Path, command: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    extra = (["--prompt", "p", "--a", "a", "--b", "b"] if command == "try"
             else ["--pairs", str(write_pairs(tmp_path / "pairs.jsonl", 40))])
    started = time.monotonic()  # in this process: the bound is the command's own time, not an interpreter start-up
    result = call_cli("judge", command, *extra, "--base-url", url)
    assert time.monotonic() - started < 20  # retries took over a minute
    stderr = result.stderr
    assert result.returncode == 2
    lines = [line for line in stderr.splitlines() if line.strip() and "judging pairs" not in line]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"writing-rl: error: cannot connect to the judge at {url} (")
    assert lines[0].endswith("nothing listens there: is the judge server started, and is the port right?")


def test_M2_https_to_an_http_port_and_unknown_host(judge_server: JudgeServerProcess, clean_judge_env: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = f"https://127.0.0.1:{judge_server.port}/v1"
    code, _, err = run(capsys, "judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--base-url", url)
    assert code == 2 and "use http:// instead of https://" in err and url in err
    code, _, err = run(capsys, "judge", "try", "--prompt", "p", "--a", "a", "--b", "b",
                       "--base-url", "http://no-such-host.invalid/v1")
    assert code == 2 and "the host name does not resolve: check the host in the URL" in err


async def test_M2_training_client_still_retries_connection_errors() -> None:
    settings = JudgeSettings(base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=2,
                             backoff_initial_s=0.01)
    async with JudgeClient(settings) as client:
        with pytest.raises(JudgeUnavailable, match="after 3 attempt"):
            await client.complete([{"role": "user", "content": "x"}])
        assert client.usage.retries["connection"] == 2


# M3 ------------------------------------------------------------------------------------------------

def test_M3_404_without_v1_suggests_it(judge_server: JudgeServerProcess, clean_judge_env: None,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    bare = judge_server.base_url.removesuffix("/v1")
    code, _, err = run(capsys, "judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--base-url", bare)
    assert code == 1 and f"judge answered HTTP 404: 404: Not Found (did you mean {bare}/v1 ?)" in err
    check = check_judge_reachable(JudgeSettings(base_url=bare))  # what doctor and preflight print
    assert not check.ok and f"(did you mean {bare}/v1 ?)" in check.detail


# M5, M6 ----------------------------------------------------------------------------------------------

def test_M5_key_given_as_variable_name_is_refused_unseen(judge_server: JudgeServerProcess, clean_judge_env: None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--base-url",
                         judge_server.base_url, "--api-key-env", SECRET)
    assert code == 2
    assert ("api_key_env must be the NAME of the environment variable holding the key, e.g. JUDGE_API_KEY; "
            "the value given looks like a key itself and is not shown") in err
    assert SECRET not in out + err and judge_server.stats()["requests"] == 0
    args = build_parser().parse_args(["doctor", "--base-url", judge_server.base_url, "--api-key-env", SECRET])
    checks = check_judge(args)
    assert [c.ok for c in checks] == [False] and SECRET not in checks[0].line()
    assert "looks like a key itself" in checks[0].line()


def test_M6_doctor_key_check_loopback_needs_no_key(clean_judge_env: None) -> None:
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"):
        check = check_api_key(JudgeSettings(base_url=url, api_key_env="WRL_UNSET_KEY"))
        assert check.ok and check.detail == "not set (a loopback judge needs none)"
    remote = check_api_key(JudgeSettings(base_url="https://judge.example.com/v1", api_key_env="WRL_UNSET_KEY"))
    assert not remote.ok and remote.detail == "not set: export WRL_UNSET_KEY=... before training"


# M17 -----------------------------------------------------------------------------------------------

def test_M17_identical_pairs_are_skipped_and_counted(judge_server: JudgeServerProcess, tmp_path: Path,
                                                     clean_judge_env: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4, identical=2)
    code, out, err = run(capsys, "judge", "eval", "--pairs", str(pairs), "--json", "--base-url",
                         judge_server.base_url)
    summary = json.loads(out)
    assert code == 0 and summary["pairs"] == 2 and summary["skipped_identical_pairs"] == 2
    assert summary["accuracy_both_orders"] == 1.0 and judge_server.stats()["requests"] == 4
    assert "skipped 2 pair(s) whose chosen and rejected texts are identical (they measure nothing): " \
           "ids ['p0', 'p1']" in err


@pytest.mark.parametrize("limit", ["0", "-1", "two"])
def test_M17_limit_below_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", 2)
    with pytest.raises(SystemExit) as caught:
        main(["judge", "eval", "--pairs", str(pairs), "--limit", limit])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "argument --limit:" in err
    assert ("must be at least 1" if limit != "two" else "is not a whole number") in err


def test_M12_eval_null_ids_are_no_ids(judge_server: JudgeServerProcess, tmp_path: Path, clean_judge_env: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pairs = tmp_path / "null_id.jsonl"
    pairs.write_text("".join(json.dumps({"id": None, "prompt": "p", "chosen": f"QUALITY=9 {i}",
                                         "rejected": "QUALITY=1"}) + "\n" for i in range(2)))
    out_file = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "judge", "eval", "--pairs", str(pairs), "--json", "--base-url",
                       judge_server.base_url, "--out", str(out_file))
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out_file.read_text().splitlines()] == ["1", "2"]


# COSMETIC --------------------------------------------------------------------------------------------

def test_COSMETIC_tokens_exclude_cached_judgements(judge_server: JudgeServerProcess, tmp_path: Path,
                                                   clean_judge_env: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["judge", "eval", "--pairs", str(write_pairs(tmp_path / "pairs.jsonl", 2)), "--json",
            "--base-url", judge_server.base_url, "--cache", str(tmp_path / "cache.sqlite")]
    first = json.loads(run(capsys, *args)[1])
    second = json.loads(run(capsys, *args)[1])
    assert first["prompt_tokens"] > 0 and first["cached_judgements"] == 0
    assert second["prompt_tokens"] == second["completion_tokens"] == 0 and second["cached_judgements"] == 4


def test_COSMETIC_empty_criteria_and_criteria_template_without_criteria(
        judge_server: JudgeServerProcess, clean_judge_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--base-url", judge_server.base_url]
    code, _, err = run(capsys, *base, "--criteria", " ")
    assert code == 2 and "--criteria is empty; give the criteria text, or leave --criteria out" in err
    code, _, err = run(capsys, *base, "--template", "pairwise_criteria")
    assert code == 2 and "has a {criteria} placeholder; pass --criteria TEXT" in err
    assert judge_server.stats()["requests"] == 0


@pytest.mark.slow
def test_M3_M6_doctor_end_to_end(judge_server: JudgeServerProcess, clean_judge_env: None,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "doctor", "--skip-ray", "--base-url", judge_server.base_url, "--model", "test-judge")
    assert code == 0, out
    assert "[ok] API key variable JUDGE_API_KEY: not set (a loopback judge needs none)" in out
    bare = judge_server.base_url.removesuffix("/v1")
    code, out, _ = run(capsys, "doctor", "--skip-ray", "--base-url", bare, "--model", "test-judge")
    assert code == 1 and f"[FAIL] judge reachable: {bare}: judge answered HTTP 404: 404: Not Found (did you mean " \
                         f"{bare}/v1 ?)" in out
