"""`writing-rl eval policy` against the loopback judge (real HTTP, real subprocesses): win rate and its interval,
ties and flips, per-criterion scores, the HTML report; the statistics on synthetic data with a known answer."""

from __future__ import annotations

import base64
import json
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from writing_rl.evaluation.criteria import split_criteria
from writing_rl.evaluation.statistics import bootstrap_ci, fit_length_controlled, length_feature
from writing_rl.judge.parsing import parse_score
from writing_rl.prompts import TemplateError, load_template
from writing_rl.testing.cli_runner import call_cli, cli_process, wait_for_requests
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.testing.writer_process import WriterServerProcess

# (policy quality, baseline quality) per prompt: 7 wins, 2 losses, 1 tie
QUALITIES = [(8, 3)] * 7 + [(2, 6)] * 2 + [(5, 5)]
CRITERIA = "- Vivid imagery\n- Clear structure"
CRITERIA_PROMPTS = 4  # the first four (all policy wins: 8 vs 3) carry two criteria each


def write_inputs(folder: Path) -> tuple[Path, Path, Path]:
    prompts, policy, baseline = folder / "prompts.jsonl", folder / "policy.jsonl", folder / "baseline.jsonl"
    with prompts.open("w") as p, policy.open("w") as a, baseline.open("w") as b:
        for i, (qp, qb) in enumerate(QUALITIES):
            row: dict[str, Any] = {"id": f"p{i}", "prompt": f"Write piece {i}."}
            if i < CRITERIA_PROMPTS:
                row["criteria"] = CRITERIA
            p.write(json.dumps(row) + "\n")
            a.write(json.dumps({"id": f"p{i}", "response": f"Policy text {i} " + "more words " * (i + 5)
                                + f"QUALITY={qp}"}) + "\n")
            b.write(json.dumps({"id": f"p{i}", "response": f"Baseline text {i} QUALITY={qb}"}) + "\n")
    return prompts, policy, baseline


def eval_policy(server: JudgeServerProcess | str, prompts: Path, policy: Path | None, baseline: Path | None,
                out_dir: Path, *extra: str) -> Any:
    base_url = server if isinstance(server, str) else server.base_url
    sides = [*(["--policy", str(policy)] if policy else []), *(["--baseline", str(baseline)] if baseline else [])]
    return call_cli("eval", "policy", "--prompts", str(prompts), *sides, "--out-dir", str(out_dir), "--json",
                   "--base-url", base_url, "--model", "test-judge", *extra)


def test_win_rate_interval_criteria_and_report(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    prompts, policy, baseline = write_inputs(tmp_path)
    out = tmp_path / "out"
    cache = str(tmp_path / "judge.sqlite")
    result = eval_policy(judge_server, prompts, policy, baseline, out, "--cache", cache)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    summary = json.loads(result.stdout)
    per_prompt_scores = [1.0] * 7 + [0.0] * 2 + [0.5]
    assert summary["pairs"] == 10 and summary["usable_pairs"] == 10 and summary["prompts"] == 10
    assert (summary["wins"], summary["losses"], summary["ties"], summary["flips"]) == (7, 2, 1, 0)
    assert summary["win_rate"] == pytest.approx(0.75) and summary["tie_rate"] == pytest.approx(0.1)
    assert summary["win_rate_ci"] == pytest.approx(list(bootstrap_ci(per_prompt_scores, seed=0)))
    low, high = summary["win_rate_ci"]
    assert 0.4 < low < 0.75 < high <= 1.0
    assert summary["parse_failures"] == 0 and summary["judge_failures"] == 0
    # every policy text is the longer one here: no pair near equal length, so no length-controlled rate (D1)
    assert summary["length_controlled_win_rate"] is None and "not identified" in summary["length_control_note"]
    # critic: QUALITY is the score the loopback judge gives each criterion
    assert summary["criteria_prompts"] == CRITERIA_PROMPTS
    assert summary["criteria_mean_policy"] == 8.0 and summary["criteria_mean_baseline"] == 3.0
    assert judge_server.stats()["requests"] == summary["http_requests"] == 10 * 2 + CRITERIA_PROMPTS * 2 * 2
    assert summary["policy_longer_share"] == 1.0  # every policy text is longer: the LC estimate extrapolates

    records = [json.loads(line) for line in (out / "per_prompt.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"p{i}" for i in range(10)]
    assert records[0]["criteria"] == {"Vivid imagery": {"policy": 8.0, "baseline": 3.0},
                                      "Clear structure": {"policy": 8.0, "baseline": 3.0}}
    assert records[7]["loss"] == 1 and records[7]["verdicts"] == [["B", "A"]] and "criteria" not in records[7]
    assert json.loads((out / "summary.json").read_text())["wins"] == 7

    report = (out / "report.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', report)
    assert [name for name, _ in images] == ["win rate", "lengths", "scores"]
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert "<td>p9</td>" in report and "http" not in report.split("<body>")[1].split("<h2>")[0]

    again = eval_policy(judge_server, prompts, policy, baseline, tmp_path / "again", "--cache", cache)
    rerun = json.loads(again.stdout)
    assert rerun["http_requests"] == 0 and rerun["cached_judgements"] == 36  # a rerun is free
    assert judge_server.stats()["requests"] == 10 * 2 + CRITERIA_PROMPTS * 2 * 2


def test_position_bias_shows_as_flips(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    judge_server.configure(first_position_bonus=10.0)  # whatever is shown first wins
    prompts, policy, baseline = write_inputs(tmp_path)
    summary = json.loads(eval_policy(judge_server, prompts, policy, baseline, tmp_path / "out",
                                     "--no-criteria").stdout)
    assert summary["flips"] == 10 and summary["flip_rate"] == 1.0 and summary["wins"] == 0
    assert summary["win_rate"] == 0.5 and summary["win_rate_ci"] == [0.5, 0.5]


def test_generation_parquet_with_samples(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    """Our verl parquet as prompts, and main_generation_server's output (input rows + `responses`, n per row)."""
    rows = [{"data_source": "writing", "prompt": [{"role": "user", "content": f"Write {i}."}],
             "reward_model": {"style": "rule", "ground_truth": {"prompt": f"Write {i}.", "target": ["ref"],
                                                                "criteria": None, "id": f"w{i}"}},
             "extra_info": {"index": f"w{i}", "split": "test"}} for i in range(3)]
    pd.DataFrame(rows).to_parquet(tmp_path / "test.parquet")
    policy = pd.DataFrame([{**r, "responses": [f"<think>plan</think>pol {i} QUALITY=7", f"pol {i}b QUALITY=1"]}
                           for i, r in enumerate(rows)])
    baseline = pd.DataFrame([{**r, "responses": [f"base {i} QUALITY=4", f"base {i}b QUALITY=4"]}
                             for i, r in enumerate(rows)])
    policy.to_parquet(tmp_path / "policy_gen.parquet")
    baseline.to_parquet(tmp_path / "baseline_gen.parquet")
    result = eval_policy(judge_server, tmp_path / "test.parquet", tmp_path / "policy_gen.parquet",
                         tmp_path / "baseline_gen.parquet", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pairs"] == 6 and summary["wins"] == 3 and summary["losses"] == 3
    assert summary["win_rate"] == 0.5 and summary["prompts"] == 3
    records = [json.loads(line) for line in (tmp_path / "out" / "per_prompt.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["w0", "w1", "w2"] and all(r["score"] == 0.5 for r in records)


def test_responses_generated_from_endpoints_are_cached(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    prompts, _, _ = write_inputs(tmp_path)
    with WriterServerProcess(qualities={"policy-ckpt": 8, "base-model": 3}) as writers:
        args = ["--policy-base-url", writers.base_url, "--policy-model", "policy-ckpt",
                "--baseline-base-url", writers.base_url, "--baseline-model", "base-model", "--no-criteria"]
        first = eval_policy(judge_server, prompts, None, None, tmp_path / "out", *args)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["win_rate"] == 1.0
        assert writers.stats()["requests"] == 20
        saved = [json.loads(line) for line in (tmp_path / "out" / "policy_responses.jsonl").read_text().splitlines()]
        assert len(saved) == 10 and "QUALITY=8" in saved[0]["response"][0]
        second = eval_policy(judge_server, prompts, None, None, tmp_path / "out", *args)
        assert second.returncode == 0, second.stderr
        assert writers.stats()["requests"] == 20  # generation cache: nothing generated twice
        writers.configure(faults={"base-model": "bad_request"})
        failed = eval_policy(judge_server, prompts, None, None, tmp_path / "fresh", *args)
        assert failed.returncode == 2
        assert f"--baseline-base-url {writers.base_url} (model 'base-model'): no response for prompt" in failed.stderr
        assert "the endpoint answered HTTP 400" in failed.stderr and "Traceback" not in failed.stderr
        assert "judge answered" not in failed.stderr  # M15: a writer endpoint, not the judge, refused


def test_M15_generation_settings_errors_name_the_generation_options(tmp_path: Path) -> None:
    prompts, _, baseline = write_inputs(tmp_path)
    result = call_cli("eval", "policy", "--prompts", str(prompts), "--policy-base-url", "http://127.0.0.1:9/v1",
                      "--policy-model", "m", "--policy-api-key-env", "sk-not-a-name-123", "--baseline", str(baseline),
                      "--out-dir", str(tmp_path / "out"), "--base-url", "http://127.0.0.1:9/v1", "--model", "j")
    assert result.returncode == 2 and "--policy-api-key-env" in result.stderr
    assert "sk-not-a-name-123" not in result.stderr and "api_key_env" not in result.stderr


def test_bad_inputs_name_the_file_row_and_ids(tmp_path: Path) -> None:
    prompts, policy, baseline = write_inputs(tmp_path)
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(policy.read_text().splitlines()[:8]) + "\n")
    result = eval_policy("http://127.0.0.1:9/v1", prompts, short, baseline, tmp_path / "out")
    assert result.returncode == 2
    assert f"--policy {short}: no response for 2 prompt id(s) ['p8', 'p9']" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p0", "response": 5}\n')  # (an empty response is judged as lost: see M14)
    result = eval_policy("http://127.0.0.1:9/v1", prompts, policy, bad, tmp_path / "out")
    assert result.returncode == 2 and f"--baseline {bad}, row 1: field 'response'" in result.stderr
    result = eval_policy("http://127.0.0.1:9/v1", prompts, policy, baseline, prompts)
    assert result.returncode == 2 and "--out-dir" in result.stderr and "is a file" in result.stderr


def test_bootstrap_interval_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(1)
    scores = (rng.random(400) < 0.7).astype(float)
    low, high = bootstrap_ci(scores, seed=0)
    assert low < scores.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * np.sqrt(scores.mean() * (1 - scores.mean()) / 400), abs=0.01)
    assert bootstrap_ci(scores, seed=0) == (low, high)  # seeded


@pytest.mark.parametrize(("intercept", "slope"), [(0.0, 2.0), (1.0, 1.5), (-0.5, 0.0)])
def test_length_controlled_win_rate_recovers_the_truth(intercept: float, slope: float) -> None:
    """Synthetic outcomes from a known model: the policy is longer on average, the judge rewards length."""
    rng = np.random.default_rng(7)
    policy_words = rng.integers(150, 600, size=8000)
    baseline_words = rng.integers(100, 300, size=8000)
    x = length_feature(policy_words, baseline_words)
    wins = (rng.random(8000) < 1 / (1 + np.exp(-(intercept + slope * x)))).astype(float)
    fit = fit_length_controlled(wins, x)
    truth = 1 / (1 + np.exp(-intercept))
    assert fit.win_rate == pytest.approx(truth, abs=0.03)
    assert fit.length_coefficient == pytest.approx(slope, abs=0.2)
    if slope > 0:
        assert wins.mean() > truth + 0.1  # the raw win rate is inflated by length; the controlled one is not


def test_length_control_stays_finite_when_every_pair_is_won() -> None:
    fit = fit_length_controlled([1.0] * 20, np.linspace(-1, 1, 20))
    assert 0.9 < fit.win_rate <= 1.0 and np.isfinite(fit.length_coefficient)




def test_ctrl_c_keeps_what_was_judged_and_a_rerun_resumes(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    judge_server.configure(latency_s=0.4)
    prompts, policy, baseline = tmp_path / "prompts.jsonl", tmp_path / "policy.jsonl", tmp_path / "baseline.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Write {i}."}) + "\n" for i in range(20)))
    policy.write_text("".join(json.dumps({"id": f"p{i}", "response": f"pol {i} QUALITY=8"}) + "\n" for i in range(20)))
    baseline.write_text("".join(json.dumps({"id": f"p{i}", "response": f"base {i} QUALITY=3"}) + "\n"
                                for i in range(20)))
    out, cache = tmp_path / "out", tmp_path / "judge.sqlite"
    args = ["eval", "policy", "--prompts", str(prompts), "--policy", str(policy), "--baseline", str(baseline),
            "--out-dir", str(out), "--json", "--base-url", judge_server.base_url, "--max-concurrency", "2",
            "--cache", str(cache)]
    process = cli_process(*args)
    wait_for_requests(judge_server, 7)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Unclosed" not in stderr
    summary = json.loads(stdout)
    done = summary["pairs"]
    assert 1 <= done < 20 and summary["wins"] == done and summary["win_rate"] == 1.0
    assert summary["complete"] is False and "complete: false" in stderr  # M2: a partial summary says so
    assert f"interrupted: {done} of 20 pair(s) judged" in stderr
    assert len((out / "per_prompt.jsonl").read_text().splitlines()) == done and (out / "report.html").exists()

    judge_server.configure(latency_s=0.0)
    paid_before = judge_server.stats()["requests"]
    resumed = call_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["pairs"] == 20
    assert judge_server.stats()["requests"] - paid_before <= 40 - 2 * done


def test_single_score_prompt_files() -> None:
    template = load_template("criteria_score", expect_output="score")
    assert template.placeholders == {"prompt", "response", "criteria"}
    assert "\\boxed{score}" in template.render(prompt="p", response="r", criteria="c")[-1]["content"]
    assert parse_score("Reasoning. \\boxed{7.5}") == 7.5
    assert parse_score("\\boxed{6} then \\boxed{11}") == 6.0  # out of range: not well-formed, skipped
    assert parse_score("\\boxed{6, 7}") is None and parse_score("<think>\\boxed{9}</think> none") is None
    assert split_criteria("- Imagery\n\n2) Structure\n* Voice") == ["Imagery", "Structure", "Voice"]


def test_a_score_file_must_use_response_not_response_a(tmp_path: Path) -> None:
    path = tmp_path / "critic.toml"
    path.write_text('output = "score"\nuser = "{prompt} {criteria} {response_a} \\\\boxed{{score}}"\n')
    with pytest.raises(TemplateError, match=r"unknown placeholder\(s\) \['\{response_a\}'\]"):
        load_template(path)


# ------------------------------------------------------------------------- what the headline must not hide
def write_rows(folder: Path, policy_texts: list[str], baseline_texts: list[str]) -> tuple[Path, Path, Path]:
    prompts, policy, baseline = folder / "prompts.jsonl", folder / "policy.jsonl", folder / "baseline.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Write {i}."}) + "\n"
                               for i in range(len(policy_texts))))
    for path, texts in ((policy, policy_texts), (baseline, baseline_texts)):
        path.write_text("".join(json.dumps({"id": f"p{i}", "response": t}) + "\n" for i, t in enumerate(texts)))
    return prompts, policy, baseline


CLEAN = [f"policy story {i} QUALITY=8" for i in range(7)] + ["policy story 7 QUALITY=5"]
BASELINE = [f"baseline story {i} QUALITY=3" for i in range(7)] + ["baseline story 7 QUALITY=5"] + \
           [f"baseline story {i} QUALITY=6" for i in (8, 9)]


def test_unparseable_verdicts_count_as_not_won(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    """7 clean wins, 1 tie, and 2 pairs whose verdict cannot be parsed: 0.75, not 7.5/8 = 0.938 (a policy that
    breaks the judge's format must not look better for it)."""
    texts = [*CLEAN, *(f"policy story {i} JUDGE_FAULT=no_verdict" for i in (8, 9))]
    result = eval_policy(judge_server, *write_rows(tmp_path, texts, BASELINE), tmp_path / "out", "--no-criteria")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["unparsed_pairs"] == 2 and summary["usable_pairs"] == 8 and summary["prompts"] == 10
    assert summary["win_rate"] == pytest.approx(0.75)
    assert summary["parsed_only_win_rate"] == pytest.approx(7.5 / 8)
    assert "2 pair(s) got a verdict that could not be parsed: counted as not won" in result.stderr


def test_judge_failures_on_the_losing_prompts_are_warned_with_their_range(judge_server: JudgeServerProcess,
                                                                           tmp_path: Path) -> None:
    """M1: the judge refuses (HTTP 400) exactly the policy's two losing pairs: the rate over the answered pairs
    rises, and the summary, the console and the report say by how much the failed pairs could move it."""
    texts = [*CLEAN, *(f"policy story {i} QUALITY=2 JUDGE_FAULT=bad_request" for i in (8, 9))]
    result = eval_policy(judge_server, *write_rows(tmp_path, texts, BASELINE), tmp_path / "out", "--no-criteria")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["judge_failed_pairs"] == 2 and summary["answered_pairs"] == 8
    assert summary["win_rate"] == pytest.approx(7.5 / 8)
    assert summary["win_rate_range_over_judge_failures"] == pytest.approx([0.75, 0.95])
    assert "2 pair(s) got no answer from the judge" in result.stderr and "0.750 to 0.950" in result.stderr
    assert "got no answer from the judge" in (tmp_path / "out" / "report.html").read_text()


def test_nothing_parsed_gives_no_rate_instead_of_zero(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    """M3: a judge whose every answer is unreadable (a wrong --template) gives null rates and exit 1, not 0.0."""
    texts = [f"policy story {i} JUDGE_FAULT=no_verdict" for i in range(4)]
    result = eval_policy(judge_server, *write_rows(tmp_path, texts, BASELINE[:4]), tmp_path / "out", "--no-criteria")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["win_rate"] is None and summary["win_rate_ci"] is None
    assert summary["length_controlled_win_rate"] is None and summary["usable_pairs"] == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["win_rate"] is None


def test_identical_pairs_are_warned(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    """M22: --baseline given the --policy file: every pair compares a text with itself."""
    prompts, policy, _ = write_rows(tmp_path, CLEAN, CLEAN)
    result = eval_policy(judge_server, prompts, policy, policy, tmp_path / "out", "--no-criteria")
    assert json.loads(result.stdout)["identical_pairs"] == 8
    assert "8 pair(s) compare two identical texts" in result.stderr


def test_length_control_is_withheld_when_every_policy_text_is_longer(judge_server: JudgeServerProcess,
                                                                      tmp_path: Path) -> None:
    """D1: identical verdicts, but each policy text padded by 3, 30 or 300 words: the length-controlled rate used to
    be 0.667, 0.544, 0.512 (set by the ridge, with a narrow interval); now it is withheld with the reason, in the
    summary, on the console and in the report. The same texts without padding keep their estimate."""
    base_texts = [f"baseline story number {i} QUALITY=3" for i in range(10)]
    for padding in (0, 3, 300):
        texts = [f"policy story number {i} QUALITY={8 if i < 7 else 2}" + " filler" * padding for i in range(10)]
        out = tmp_path / f"pad{padding}"
        out.mkdir()
        result = eval_policy(judge_server, *write_rows(out, texts, base_texts), out / "out", "--no-criteria")
        summary = json.loads(result.stdout)
        assert summary["win_rate"] == pytest.approx(0.7)
        if padding == 0:
            assert summary["length_controlled_win_rate"] is not None and summary["length_control_note"] is None
            continue
        assert summary["length_controlled_win_rate"] is None and summary["length_controlled_win_rate_ci"] is None
        assert "not identified" in summary["length_control_note"] and "not identified" in result.stderr
        assert "not identified" in (out / "out" / "report.html").read_text()


def test_length_control_needs_pairs_on_both_sides_of_equal_length() -> None:
    from writing_rl.evaluation.statistics import length_control

    rng = np.random.default_rng(0)
    outcomes = list(rng.integers(0, 2, 40).astype(float))
    one_sided = length_control(outcomes, list(np.full(40, 2.3) + rng.normal(0, 0.01, 40)), [str(i) for i in range(40)])
    assert one_sided.win_rate is None and "longer" in (one_sided.note or "")
    both = length_control(outcomes, list(rng.normal(0, 0.5, 40)), [str(i) for i in range(40)])
    assert both.win_rate is not None and both.interval is not None and both.note is None


def test_M14_an_empty_response_loses_instead_of_stopping_the_evaluation(judge_server: JudgeServerProcess,
                                                                         tmp_path: Path) -> None:
    """A policy response that is only reasoning used to stop the run (exit 2, "drop the row"), and dropping it
    raises the policy's rate; training scores it as a loss, and so does evaluation, without paying the judge."""
    texts = [*CLEAN, "<think>I will write later</think>", "policy story 9 QUALITY=8"]
    baseline = [*BASELINE[:9], "   "]
    result = eval_policy(judge_server, *write_rows(tmp_path, texts, baseline), tmp_path / "out", "--no-criteria")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["empty_policy_pairs"] == 1 and summary["empty_baseline_pairs"] == 1
    assert summary["win_rate"] == pytest.approx((7 + 0.5 + 0 + 1) / 10) and summary["pairs"] == 10
    assert judge_server.stats()["requests"] == 8 * 2  # the two pairs with an empty side cost nothing
    assert "1 pair(s) have an empty policy response" in result.stderr
