"""`writing-rl data select` against real loopback servers: a writer server playing the policy and the
candidates (scripted QUALITY per model and prompt) and the test judge, which judges by those numbers,
so every margin, ladder and selected id is known in advance. The CLI runs as a real subprocess."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from writing_rl.data.rows import DataError
from writing_rl.judge.pairwise import Comparison
from writing_rl.judge.parsing import Verdict
from writing_rl.selection.endpoints import load_endpoints
from writing_rl.selection.ladder import order_candidates
from writing_rl.selection.margin import policy_margin
from writing_rl.selection.outcomes import Outcome, both_orders
from writing_rl.testing.cli_runner import call_cli, cli_process, wait_for_requests
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.testing.writer_process import WriterServerProcess

# Policy quality 3 unless a prompt says otherwise; candidates listed out of order on purpose.
QUALITIES = {"policy": 3, "strong": 9, "weak": 2, "mid": 5}
OVERRIDES = [
    {"model": "policy", "prompt_contains": "[bad]", "quality": 1},
    {"model": "policy", "prompt_contains": "[good]", "quality": 10},
    {"model": "policy", "prompt_contains": "[ok]", "quality": 5},  # ties mid
    {"model": "policy", "prompt_contains": "[tie]", "quality": 1},
    {"model": "mid", "prompt_contains": "[tie]", "quality": 9},
]
TAGS = ["", "[bad]", "[good]", "[tie]", "[ok]", "[bad] again", ""]


@pytest.fixture(scope="module")
def writers_process() -> Iterator[WriterServerProcess]:
    with WriterServerProcess(qualities=QUALITIES, overrides=OVERRIDES) as server:
        yield server


@pytest.fixture
def writers(writers_process: WriterServerProcess) -> WriterServerProcess:
    writers_process.configure(qualities=QUALITIES, overrides=OVERRIDES, faults={}, latency_s=0.0)
    writers_process.reset()
    return writers_process


def write_prompts(path: Path, tags: list[str], criteria: dict[int, str] | None = None) -> Path:
    rows = [{"id": f"p{i}", "prompt": f"Write story {i} {tag}"} for i, tag in enumerate(tags)]
    for i, text in (criteria or {}).items():
        rows[i]["criteria"] = text
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_endpoints(path: Path, base_url: str, candidates: list[str], extra: str = "",
                    urls: dict[str, str] | None = None) -> Path:
    urls = urls or {}
    text = f'[policy]\nbase_url = "{base_url}"\nmodel = "policy"\nmax_tokens = 100\n{extra}'
    for name in candidates:
        text += (f'\n[[candidates]]\nbase_url = "{urls.get(name, base_url)}"\nmodel = "{name}"\nmax_tokens = 200\n'
                 f"usd_per_mtok_in = 1.0\nusd_per_mtok_out = 2.0\n{extra}")
    path.write_text(text, encoding="utf-8")
    return path


def select_args(tmp_path: Path, judge: JudgeServerProcess, endpoints: Path, prompts: Path, *extra: str) -> list[str]:
    return ["data", "select", "--prompts", str(prompts), "--endpoints", str(endpoints), "--out-dir",
            str(tmp_path / "out"), "--run-dir", str(tmp_path / "running_file"), "--experiment", "sel",
            "--base-url", judge.base_url, "--model", "test-judge", *extra]


def quality(text: str) -> int:
    return int(text.rsplit("QUALITY=", 1)[1])


def test_selection_keeps_largest_margins_with_ordered_ladders(writers: WriterServerProcess,
                                                             judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", TAGS, criteria={0: "Vivid imagery."})
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak", "mid"])
    result = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts, "--top", "3", "--min-margin", "0.5",
                                  "--json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # margins: p1, p3, p5 = 1 (every candidate beats a policy of quality 1); p0, p6 = 2/3; p4 = 1/3; p2 = 0
    assert report["margins"] == {"p0": 2 / 3, "p1": 1.0, "p2": 0.0, "p3": 1.0, "p4": 1 / 3, "p5": 1.0, "p6": 2 / 3}
    # ranked by margin: p1, p3 (mid ties strong: dropped), p5, then p0 fills the third place; p6 never ranked
    assert report["selected"] == ["p1", "p5", "p0"]
    assert {k: v.split(":")[0] for k, v in report["dropped"].items()} == {
        "p2": "no margin", "p3": "not orderable", "p4": "below --min-margin", "p6": "not ranked"}
    assert report["dropped"]["p3"].startswith("not orderable: strong vs mid undecided")
    assert report["ladders"] == {pid: ["weak", "mid", "strong"] for pid in ("p1", "p5", "p0")}
    assert report["win_counts"]["p3"] == {"strong": 1, "weak": 0, "mid": 0} and "p6" not in report["win_counts"]
    assert report["judge"]["policy_comparisons_undecided"] == 1  # p4: the policy ties mid
    # 2K per prompt for the margins, K(K-1) per ranked prompt (p1, p5, p0), p3's ranking stopped at its second
    # pair (strong vs mid: a tie); all pairs: 7 x 4 x 3
    assert summary["judge_calls"] == 2 * 3 * 7 + 6 * 3 + 2 * 2 == judge_server.stats()["requests"]
    assert summary["judge_calls_all_pairs"] == 84
    assert writers.stats()["requests"] == 7 * 4 and writers.stats()["repeated"] == 0
    rows = pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == ["p1", "p5", "p0"]
    for row in rows:
        assert [quality(t) for t in row["reward_model"]["ground_truth"]["target"]] == [2, 5, 9]
    assert [r["reward_model"]["ground_truth"]["criteria"] for r in rows] == [None, None, "Vivid imagery."]
    index = json.loads((tmp_path / "running_file" / "index_sel.json").read_text())
    assert index == {"p0": 0, "p1": 0, "p5": 0}
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| 1.00 | 3 | 2 |" in markdown and "| 0.67 | 2 | 1 |" in markdown
    assert "| not orderable | 1 |" in markdown and "| 3 | 3 |" in markdown
    assert (tmp_path / "out" / "margin_histogram.png").read_bytes().startswith(b"\x89PNG")
    # generation cost from the TOML prices: 3 candidates x 7 replies, $1 / $2 per million tokens
    generation = report["generation"]["strong"]
    assert generation["usd"] == pytest.approx((generation["prompt_tokens"] + 2 * generation["completion_tokens"]) / 1e6)

    again = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts, "--top", "3", "--min-margin", "0.5",
                                 "--json"))
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["judge_calls_cached"] == rerun["judge_calls"] == summary["judge_calls"]
    assert rerun["paid_now_usd"] == 0 and judge_server.stats()["requests"] == summary["judge_calls"]
    assert writers.stats()["requests"] == 7 * 4


def test_dry_run_estimates_and_sends_nothing(writers: WriterServerProcess, judge_server: JudgeServerProcess,
                                             tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", TAGS)
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak", "mid"])
    result = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts, "--dry-run", "--json", "--top", "2",
                                  "--max-tokens", "50", "--judge-usd-per-mtok-in", "3", "--judge-usd-per-mtok-out",
                                  "0"))
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert estimate["generations"] == 7 * 4
    assert estimate["judge_calls_margins"] == 42 and estimate["judge_calls_all_pairs"] == 84
    assert estimate["judge_calls_ranking_at_least"] == 2 * 6 and estimate["judge_calls_ranking_at_most"] == 7 * 6
    strong = estimate["generation"]["strong"]
    assert strong["completion_tokens_at_most"] == 7 * 200
    assert strong["usd_at_most"] == pytest.approx((strong["prompt_tokens"] + 2 * 7 * 200) / 1e6, abs=1e-4)
    assert estimate["judge_completion_tokens_at_most"] == (42 + 42) * 50
    assert estimate["judge_usd_at_most"] == pytest.approx(3 * estimate["judge_prompt_tokens_at_most"] / 1e6, abs=1e-4)
    text = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts, "--dry-run"))
    assert text.returncode == 0 and "dry run: nothing was sent" in text.stdout
    # M7: no judge price given: its cost is unknown, not $0.00
    assert "completion, <= $? (no price given)" in text.stdout and "total: <= $? (no price given)" in text.stdout
    assert writers.stats()["requests"] == 0 and judge_server.stats()["requests"] == 0
    assert not (tmp_path / "out").exists()


def interrupt_when(args: list[str], reached: Callable[[], bool]) -> subprocess.CompletedProcess[str]:
    process = cli_process(*args)
    deadline = time.monotonic() + 300  # bounds a hang only: a loaded machine starts processes slowly
    while not reached():
        assert process.poll() is None and time.monotonic() < deadline, "the selection never got that far"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_ctrl_c_then_rerun_pays_no_call_twice(writers: WriterServerProcess, judge_server: JudgeServerProcess,
                                             tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", [f"n{i}" for i in range(12)])
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak"],
                                extra="max_concurrency = 2\n")
    args = select_args(tmp_path, judge_server, endpoints, prompts, "--json", "--max-concurrency", "2")

    writers.configure(latency_s=0.3)  # stopped while generating
    stopped = interrupt_when(args, lambda: writers.stats()["requests"] >= 8)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr and "rerun the same command to resume" in stopped.stderr
    generated_before = writers.stats()["requests"]
    assert 8 <= generated_before < 36
    judged_first = judge_server.stats()["requests"]  # prompts whose responses were all in went on to be judged

    writers.configure(latency_s=0.0)
    judge_server.configure(latency_s=0.3)  # stopped while judging
    stopped = interrupt_when(args, lambda: judge_server.stats()["requests"] >= judged_first + 6)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    judged_before = judge_server.stats()["requests"]
    assert judged_first + 6 <= judged_before < 72

    judge_server.configure(latency_s=0.0)
    finished = call_cli(*args)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    # every generation and judgement was requested exactly once over the three runs
    assert writers.stats()["requests"] == 12 * 3 and writers.stats()["repeated"] == 0
    assert summary["generations_cached"] == 12 * 3  # the second run finished generating
    assert summary["judge_calls"] == 2 * 2 * 12 + 2 * 12 == judge_server.stats()["requests"]
    assert summary["judge_calls_cached"] == judged_before
    assert summary["selected"] == 12


def test_second_ctrl_c_abandons_requests_in_flight(writers: WriterServerProcess, judge_server: JudgeServerProcess,
                                                    tmp_path: Path) -> None:
    writers.configure(latency_s=60.0)
    prompts = write_prompts(tmp_path / "prompts.jsonl", TAGS[:2])
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong"])
    process = cli_process(*select_args(tmp_path, judge_server, endpoints, prompts))
    wait_for_requests(writers, 4, process=process)
    process.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert process.poll() is None  # the first Ctrl-C waits for the 4 requests in flight
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "waiting for those already sent" in stderr
    for noise in ("Traceback", "Unclosed", "Task was destroyed"):
        assert noise not in stderr, stderr


def test_shipped_example_endpoints_dry_run(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    result = call_cli("data", "select", "--prompts", "examples/writing_prompts.jsonl", "--endpoints",
                     "examples/endpoints.toml", "--out-dir", str(tmp_path / "out"), "--dry-run", "--json",
                     "--base-url", judge_server.base_url)
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert estimate["candidates"] == 4 and estimate["generations"] == 6 * 5
    assert estimate["generation"]["qwen-max"]["usd_at_most"] > 0 and judge_server.stats()["requests"] == 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_endpoints_are_named_before_any_paid_call(writers: WriterServerProcess,
                                                              judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", TAGS)
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak"],
                                urls={"weak": dead})
    result = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts))
    assert result.returncode == 2
    assert result.stderr.startswith(f"writing-rl: error: {endpoints} [[candidates]] #2: cannot reach {dead}")
    assert "is the server started" in result.stderr and "Traceback" not in result.stderr

    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak"])
    args = select_args(tmp_path, judge_server, endpoints, prompts)
    args[args.index("--base-url") + 1] = dead
    result = call_cli(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"writing-rl: error: the judge (--base-url / JUDGE_BASE_URL): cannot reach {dead}")
    assert writers.stats()["requests"] == 0 and judge_server.stats()["requests"] == 0


def test_failed_generations_drop_prompts_with_the_reason(writers: WriterServerProcess,
                                                         judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    writers.configure(faults={"weak": "bad_request"})
    prompts = write_prompts(tmp_path / "prompts.jsonl", TAGS[:3])
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak"])
    result = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts, "--json"))
    assert result.returncode == 1
    assert "no prompt was selected" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["dropped"]) == {"p0", "p1", "p2"}
    assert all(r.startswith("generation failed: weak answered HTTP 400") for r in report["dropped"].values())
    assert report["margins"] == {"p0": None, "p1": None, "p2": None}
    assert judge_server.stats()["requests"] == 0 and not (tmp_path / "out" / "train.parquet").exists()


SECRET = "sk-ABCdef1234567890XYZsecret"


def test_keys_reach_only_their_endpoint_never_files_or_output(writers: WriterServerProcess,
                                                              judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "prompts.jsonl", TAGS[:2])
    endpoints = write_endpoints(tmp_path / "endpoints.toml", writers.base_url, ["strong", "weak"],
                                extra='api_key_env = "SELECT_TEST_KEY"\n')
    result = call_cli(*select_args(tmp_path, judge_server, endpoints, prompts), env={"SELECT_TEST_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 5 and not any(SECRET.encode() in p.read_bytes() for p in written)
    assert judge_server.stats()["last_authorization"] is None  # the writers' key never went to the judge


@pytest.mark.parametrize(("table", "expected"), [
    ('base_url = "http://x/v1"\nmodel = "m"\napi_key = "' + SECRET + '"',
     r"\[policy\]: unknown key\(s\) \['api_key'\] \(give api_key_env, the variable's NAME"),
    ('base_url = "http://x/v1"\nmodel = "m"\napi_key_env = "' + SECRET + '"',
     r"\[policy\]: api_key_env must be the NAME .* looks like a key itself and is not shown"),
    ('model = "m"', r"\[policy\]: missing key 'base_url'"),
    ('base_url = "http://x/v1"\nmodel = "m"\nmax_tokens = "many"', r"\[policy\]: max_tokens must be a number"),
    ('base_url = "x/v1"\nmodel = "m"', r"\[policy\]: base_url='x/v1' must start with http://"),
    ('base_url = "http://x/v1"\nmodel = "m"\nusd_per_mtok_in = -1', r"usd_per_mtok_in must be a number >= 0"),
    ('base_url = "http://x/v1"\nmodel = ""', r"\[policy\]: model must be a non-empty string"),  # M20: not `name`
    ('base_url = "http://x/v1"\nmodel = "m"\ncache_path = "/"', r"\[policy\]: cache_path '/' is a directory"),  # M20
])
def test_endpoints_file_errors_name_the_table_and_key(tmp_path: Path, table: str, expected: str) -> None:
    path = tmp_path / "endpoints.toml"
    path.write_text(f'[policy]\n{table}\n\n[[candidates]]\nbase_url = "http://y/v1"\nmodel = "c"\n')
    with pytest.raises(DataError, match=expected) as error:
        load_endpoints(path)
    assert SECRET not in str(error.value) and str(path) in str(error.value)


def test_endpoints_file_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.toml"
    path.write_text('[policy]\nbase_url = "http://x/v1"\nmodel = "m"\n')
    with pytest.raises(DataError, match=r"missing \[\[candidates\]\] tables"):
        load_endpoints(path)
    path.write_text('[policy]\nbase_url = "http://x/v1"\nmodel = "m"\n[[candidates]]\nbase_url = "http://y/v1"\n'
                    'model = "c"\n[[candidates]]\nbase_url = "http://z/v1"\nmodel = "c"\n')
    with pytest.raises(DataError, match=r"#2: name 'c' is also the name of .*#1; give each table a distinct"):
        load_endpoints(path)
    path.write_text('[policy\n')
    with pytest.raises(DataError, match="not valid TOML"):
        load_endpoints(path)
    path.write_text('[policy]\nbase_url = "http://x/v1"\nmodel = "m"\n[[candidates]]\nbase_url = "http://y/v1"\n'
                    'model = "org/c-1"\napi_key_env = "C_KEY"\n')
    loaded = load_endpoints(path)
    assert loaded.candidates[0].where.endswith("[[candidates]] #1")
    assert loaded.candidates[0].name == "org/c-1" and loaded.candidates[0].settings.api_key_env == "C_KEY"
    assert loaded.policy.settings.api_key_env != "JUDGE_API_KEY"  # no table sends the judge's key by default
    cached = loaded.candidates[0].with_default_cache(tmp_path).settings.cache_path
    assert cached is not None and Path(cached).parent == tmp_path and "/" not in Path(cached).name


def comparison(verdict: Verdict | None, error: str | None = None) -> Comparison:
    return Comparison(verdict, None, "", None, error=error)


def test_outcomes_need_both_orders_and_ladders_refuse_cycles() -> None:
    assert both_orders(comparison(Verdict.A), comparison(Verdict.B)) is Outcome.FIRST
    assert both_orders(comparison(Verdict.B), comparison(Verdict.A)) is Outcome.SECOND
    assert both_orders(comparison(Verdict.A), comparison(Verdict.A)) is Outcome.UNDECIDED  # position bias
    assert both_orders(comparison(None), comparison(Verdict.B)) is Outcome.UNDECIDED
    assert both_orders(comparison(None, "down"), comparison(Verdict.B)) is Outcome.FAILED
    names = ("a", "b", "c")
    cycle = {(0, 1): Outcome.FIRST, (1, 2): Outcome.FIRST, (0, 2): Outcome.SECOND}  # a > b > c > a
    order = order_candidates(3, cycle, names)
    assert order.ladder is None and order.problem == "not orderable: a cycle (win counts a=1, b=1, c=1)"
    partial = order_candidates(3, {(0, 1): Outcome.FIRST, (0, 2): Outcome.UNDECIDED}, names)
    assert partial.ladder is None and partial.problem is not None
    assert partial.problem.startswith("not orderable: a vs c undecided")
    failed = order_candidates(3, {(0, 1): Outcome.FAILED}, names)
    assert failed.ladder is None and failed.problem == "judge failed: on a vs b"
    chain = {(0, 1): Outcome.SECOND, (1, 2): Outcome.SECOND, (0, 2): Outcome.SECOND}  # c > b > a
    assert order_candidates(3, chain, names).ladder == (0, 1, 2)
    assert policy_margin([Outcome.SECOND, Outcome.FIRST, Outcome.UNDECIDED, Outcome.SECOND]).value == 0.5
    assert policy_margin([Outcome.SECOND, Outcome.FAILED]).value is None
