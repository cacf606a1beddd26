"""The judge client against a real HTTP server on loopback (a separate process)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeRequestError, JudgeUnavailable
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.parsing import Verdict
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import load_template
from writing_rl.testing.server_process import JudgeServerProcess

TEMPLATE = load_template("pairwise")


def settings(server: JudgeServerProcess, **overrides: object) -> JudgeSettings:
    values: dict[str, object] = {"base_url": server.base_url, "model": "test-judge", "max_retries": 6,
                                 "backoff_initial_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}
    values.update(overrides)
    return JudgeSettings(**values)  # type: ignore[arg-type]


def messages(i: int = 0) -> list[dict[str, str]]:
    return TEMPLATE.render(prompt=f"prompt {i}", response_a=f"QUALITY=7 text {i}", response_b=f"QUALITY=3 {i}")


async def test_max_in_flight_never_exceeds_limit(judge_server: JudgeServerProcess) -> None:
    judge_server.configure(latency_s=0.05)
    async with JudgeClient(settings(judge_server, max_concurrency=4)) as client:
        replies = await asyncio.gather(*(client.complete(messages(i)) for i in range(40)))
    stats = judge_server.stats()
    assert stats["requests"] == 40
    assert stats["max_in_flight"] == 4
    assert all("[[A]]" in r.text for r in replies)


async def test_requests_per_minute_limit_held(judge_server: JudgeServerProcess) -> None:
    rpm, n = 600, 30  # 10 per second, smoothed: a 10-request burst, then 10/s
    async with JudgeClient(settings(judge_server, requests_per_minute=rpm, max_concurrency=64)) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.complete(messages(i)) for i in range(n)))
        elapsed = time.monotonic() - started
    assert elapsed >= (n - rpm / 60) / (rpm / 60) * 0.9
    arrivals = sorted(judge_server.stats()["arrival_times"])
    per_second = rpm / 60
    for i, start in enumerate(arrivals):
        for window in (0.5, 1.0, 2.0):
            in_window = sum(1 for t in arrivals[i:] if t < start + window)
            assert in_window <= per_second + per_second * window + 1


async def test_retries_only_transient_errors(judge_server: JudgeServerProcess) -> None:
    judge_server.script("rate_limit", "error_500", "error_503", "malformed", "truncated", "ok")
    async with JudgeClient(settings(judge_server)) as client:
        reply = await client.complete(messages())
        assert reply.attempts == 6 and "[[A]]" in reply.text
        assert dict(client.usage.retries) == {"rate_limited": 1, "server_error": 2, "malformed": 2}
    assert judge_server.stats()["requests"] == 6


async def test_other_4xx_is_not_retried(judge_server: JudgeServerProcess) -> None:
    judge_server.script("bad_request")
    async with JudgeClient(settings(judge_server)) as client:
        with pytest.raises(JudgeRequestError, match="HTTP 400"):
            await client.complete(messages())
    assert judge_server.stats()["requests"] == 1


async def test_empty_content_is_an_answer_not_a_retry(judge_server: JudgeServerProcess) -> None:
    judge_server.script("empty")
    async with JudgeClient(settings(judge_server)) as client:
        comparison = await PairwiseJudge(client, TEMPLATE).compare("p", "a", "b")
    assert comparison.unparseable and not comparison.failed
    assert judge_server.stats()["requests"] == 1


async def test_retry_after_is_honoured(judge_server: JudgeServerProcess) -> None:
    judge_server.script({"kind": "rate_limit", "retry_after": 1.2}, "ok")
    async with JudgeClient(settings(judge_server)) as client:
        started = time.monotonic()
        reply = await client.complete(messages())
        elapsed = time.monotonic() - started
    arrivals = judge_server.stats()["arrival_times"]
    assert reply.attempts == 2
    assert elapsed >= 1.2
    assert arrivals[1] - arrivals[0] >= 1.15


async def test_hung_request_times_out_and_is_retried(judge_server: JudgeServerProcess) -> None:
    judge_server.configure(hang_s=10.0)
    judge_server.script("hang")
    async with JudgeClient(settings(judge_server, timeout_s=0.5)) as client:
        started = time.monotonic()
        reply = await client.complete(messages())
        elapsed = time.monotonic() - started
        assert client.usage.retries["timeout"] == 1
    assert reply.attempts == 2 and "[[A]]" in reply.text
    assert elapsed < 5.0


async def test_gives_up_after_the_retry_budget(judge_server: JudgeServerProcess) -> None:
    judge_server.script(*["error_503"] * 4)
    async with JudgeClient(settings(judge_server, max_retries=3)) as client:
        with pytest.raises(JudgeUnavailable, match="after 4 attempt"):
            await client.complete(messages())
        comparison = await PairwiseJudge(client, TEMPLATE).compare("p", "QUALITY=1", "QUALITY=2")
    assert judge_server.stats()["requests"] == 5
    assert comparison.verdict == Verdict.B  # the server recovered: the next call is answered


async def test_failure_is_flagged_not_scored(judge_server: JudgeServerProcess) -> None:
    judge_server.script(*["error_500"] * 3)
    async with JudgeClient(settings(judge_server, max_retries=2)) as client:
        comparison = await PairwiseJudge(client, TEMPLATE).compare("p", "a", "b")
    assert comparison.failed and comparison.verdict is None and "after 3 attempt" in comparison.error


async def test_second_identical_run_makes_zero_requests(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    cache = tmp_path / "judge-cache.sqlite"
    async with JudgeClient(settings(judge_server, cache_path=str(cache))) as client:
        first = await asyncio.gather(*(client.complete(messages(i), vote=v) for i in range(10) for v in (0, 1)))
    assert judge_server.stats()["requests"] == 20  # votes are distinct judgements
    async with JudgeClient(settings(judge_server, cache_path=str(cache))) as client:
        second = await asyncio.gather(*(client.complete(messages(i), vote=v) for i in range(10) for v in (0, 1)))
        assert client.usage.http_requests == 0 and client.usage.cache_hits == 20
    assert judge_server.stats()["requests"] == 20
    assert [r.text for r in first] == [r.text for r in second]
    assert all(r.cached for r in second)


async def test_concurrent_identical_requests_share_one_call(judge_server: JudgeServerProcess,
                                                            tmp_path: Path) -> None:
    judge_server.configure(latency_s=0.1)
    async with JudgeClient(settings(judge_server, cache_path=str(tmp_path / "c.sqlite"))) as client:
        replies = await asyncio.gather(*(client.complete(messages()) for _ in range(5)))
    assert judge_server.stats()["requests"] == 1
    assert len({r.text for r in replies}) == 1


async def test_key_never_reaches_logs_or_cache(judge_server: JudgeServerProcess, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-test-very-secret-0123456789"
    monkeypatch.setenv("WRL_TEST_JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)
    judge_server.script("rate_limit", "error_500", "malformed", "bad_request")
    cache = tmp_path / "cache.sqlite"
    s = settings(judge_server, api_key_env="WRL_TEST_JUDGE_KEY", cache_path=str(cache))
    async with JudgeClient(s) as client:
        judge = PairwiseJudge(client, TEMPLATE)
        failed = await judge.compare("p", "a", "b")
        ok = await judge.compare("p", "QUALITY=9", "QUALITY=1")
    assert failed.failed and "HTTP 400" in (failed.error or "")
    assert ok.verdict == Verdict.A
    assert judge_server.stats()["last_authorization"] == f"Bearer {secret}"
    assert "retrying" in caplog.text  # the retries were logged ...
    assert secret not in caplog.text  # ... without the key
    assert secret not in repr(s) and secret not in str(s.public_dict())
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes()


def test_settings_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['api_key'\]"):
        JudgeSettings.from_mapping({"api_key": "sk-..."})
    with pytest.raises(ValueError, match="max_concurrency=0 must be >= 1"):
        JudgeSettings(max_concurrency=0)
    with pytest.raises(ValueError, match="base_url"):
        JudgeSettings(base_url="localhost:8000")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, clean_judge_env: None) -> None:
    monkeypatch.setenv("JUDGE_MODEL", "qwen-plus")
    monkeypatch.setenv("JUDGE_MAX_CONCURRENCY", "12")
    s = JudgeSettings.from_env({"temperature": 0.5, "model": None})
    assert (s.model, s.max_concurrency, s.temperature) == ("qwen-plus", 12, 0.5)
    monkeypatch.setenv("JUDGE_MAX_CONCURRENCY", "twelve")
    with pytest.raises(ValueError, match="JUDGE_MAX_CONCURRENCY"):
        JudgeSettings.from_env()
