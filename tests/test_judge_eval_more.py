"""`writing-rl judge eval`: length bias, best-of-k sets (RewardBench 2 style) and --summary-json, through the real
CLI in a subprocess against the loopback judge (a text's quality is the number after QUALITY= in it)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from writing_rl.cli import main
from writing_rl.testing.cli_runner import call_cli, cli_process, run_cli, wait_for_requests
from writing_rl.testing.server_process import JudgeServerProcess

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def judge_eval(server: JudgeServerProcess, pairs: Path, *extra: str) -> dict:
    result = call_cli("judge", "eval", "--pairs", str(pairs), "--json", "--base-url", server.base_url, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def length_pairs(path: Path, longer_text_quality: int) -> Path:
    """Four pairs: the chosen text is the longer one in two, the shorter one in the other two."""
    rows = []
    for n in range(4):
        chosen_longer = n % 2 == 0
        long_text, short_text = f"a long text {n} " + "with many more words " * 5, f"short {n}"
        chosen, rejected = (long_text, short_text) if chosen_longer else (short_text, long_text)
        long_q, short_q = longer_text_quality, 10 - longer_text_quality
        chosen_q, rejected_q = (long_q, short_q) if chosen_longer else (short_q, long_q)
        rows.append({"id": f"p{n}", "prompt": "Write.", "chosen": f"QUALITY={chosen_q} {chosen}",
                     "rejected": f"QUALITY={rejected_q} {rejected}"})
    return write_jsonl(path, rows)


def test_length_bias_compares_how_often_the_longer_text_wins_with_how_often_it_is_chosen(
        judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    biased = judge_eval(judge_server, length_pairs(tmp_path / "biased.jsonl", longer_text_quality=8))
    assert biased["longer_is_chosen_rate"] == 0.5
    assert biased["longer_wins_rate"] == 1.0 and biased["length_bias"] == 0.5
    assert biased["accuracy_both_orders"] == 0.5

    # a judge that follows the labels: the longer text wins exactly as often as it is the chosen one
    pairs = write_jsonl(tmp_path / "fair.jsonl", [
        {"id": "long-good", "prompt": "p", "chosen": "QUALITY=8 " + "word " * 20, "rejected": "QUALITY=2 short"},
        {"id": "short-good", "prompt": "p", "chosen": "QUALITY=8 short", "rejected": "QUALITY=2 " + "word " * 20}])
    fair = judge_eval(judge_server, pairs)
    assert fair["longer_is_chosen_rate"] == fair["longer_wins_rate"] == 0.5 and fair["length_bias"] == 0.0
    # the older keys are still there, so scripts reading --json keep working
    for key in ("pairs", "judgements", "accuracy_both_orders", "position_consistency", "first_position_win_rate",
                "tie_rate", "mean_words_preferred", "mean_words_rejected", "prompt_tokens", "http_requests"):
        assert key in fair


def best_of_k_sets(path: Path) -> Path:
    return write_jsonl(path, [
        {"id": "solved", "prompt": "Write a haiku.", "chosen": "QUALITY=9 best",
         "rejected": ["QUALITY=5 a", "QUALITY=3 b", "QUALITY=1 c"]},
        {"id": "missed", "prompt": "Write a limerick.", "chosen": "QUALITY=6 chosen",
         "rejected": ["QUALITY=8 better", "QUALITY=3 b", "QUALITY=1 c"]},
        {"id": "tied", "prompt": "Write a toast.", "chosen": "QUALITY=7 chosen",
         "rejected": ["QUALITY=7 as good", "QUALITY=3 b", "QUALITY=1 c"]},
    ])


def test_best_of_k_judges_every_candidate_against_every_other_and_takes_the_argmax(
        judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    judge_server.configure(first_position_bonus=0.5)  # position bias cancels out: every match runs in both orders
    out = tmp_path / "sets.jsonl"
    summary = judge_eval(judge_server, best_of_k_sets(tmp_path / "sets_in.jsonl"), "--out", str(out))
    assert summary["sets"] == 3 and summary["mean_candidates"] == 4.0
    assert summary["judgements"] == 36 and judge_server.stats()["requests"] == 36  # 3 sets x 4 x 3
    assert summary["accuracy"] == pytest.approx(1 / 3) and summary["tie_rate"] == pytest.approx(1 / 3)
    assert summary["random_baseline"] == 0.25
    assert summary["pairwise_accuracy_both_orders"] == pytest.approx(7 / 9)  # chosen vs each rejected: 3+2+2 of 9
    assert summary["judge_failures"] == 0 and summary["parse_failures"] == 0
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["solved"]["points"] == [6.0, 4.0, 2.0, 0.0] and records["solved"]["solved"]
    assert records["missed"]["points"] == [4.0, 6.0, 2.0, 0.0] and not records["missed"]["solved"]
    assert records["tied"]["tied"] and not records["tied"]["solved"]
    assert len(records["tied"]["matches"]) == 6


def test_best_of_k_with_the_scores_template_and_a_cache_resumes_for_free(tmp_path: Path) -> None:
    sets, cache = best_of_k_sets(tmp_path / "sets.jsonl"), tmp_path / "cache.sqlite"
    with JudgeServerProcess(mode="scores") as server:
        first = judge_eval(server, sets, "--template", "genrm", "--cache", str(cache))
        second = judge_eval(server, sets, "--template", "genrm", "--cache", str(cache))
        assert server.stats()["requests"] == 36
    assert first["accuracy"] == second["accuracy"] == pytest.approx(1 / 3)
    assert second["http_requests"] == 0 and second["cached_judgements"] == 36


def test_best_of_k_input_errors_name_the_file_and_row(judge_server: JudgeServerProcess, tmp_path: Path,
                                                      clean_judge_env: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def error(rows: list[dict]) -> str:
        path = write_jsonl(tmp_path / "sets.jsonl", rows)
        assert main(["judge", "eval", "--pairs", str(path), "--base-url", judge_server.base_url]) == 2
        return capsys.readouterr().err

    path = tmp_path / "sets.jsonl"
    mixed = error([{"prompt": "p", "chosen": "c", "rejected": ["r"]}, {"prompt": "p", "chosen": "c", "rejected": "r"}])
    assert f"{path}, row 2: field 'rejected' is string, not an array (a best-of-k set) as in row 1" in mixed
    assert f"{path}, row 1: field 'rejected' must be a non-empty array" in error(
        [{"prompt": "p", "chosen": "c", "rejected": []}])
    assert f"{path}, row 1, rejected item 2: field 'rejected' must be a string, got number" in error(
        [{"prompt": "p", "chosen": "c", "rejected": ["r", 3]}])
    assert "no set left to judge" in error([{"prompt": "p", "chosen": "c", "rejected": ["c", "r"]}])
    assert judge_server.stats()["requests"] == 0


def test_summary_json_records_what_was_measured_so_two_runs_compare(judge_server: JudgeServerProcess,
                                                                    tmp_path: Path) -> None:
    pairs = length_pairs(tmp_path / "pairs.jsonl", longer_text_quality=8)
    runs = []
    for name, bonus in (("plain", 0.0), ("biased", 10.0)):
        judge_server.configure(first_position_bonus=bonus)
        summary_file = tmp_path / f"{name}.json"
        printed = judge_eval(judge_server, pairs, "--summary-json", str(summary_file), "--temperature", "0")
        record = json.loads(summary_file.read_text())
        assert record["summary"] == printed
        runs.append(record)
    plain, biased = runs
    assert plain["kind"] == biased["kind"] == "pairs" and plain["complete"] and biased["complete"]
    assert plain["input"] == biased["input"] and len(plain["input"]["sha256"]) == 64
    assert plain["judge"]["model"] == "judge" and plain["judge"]["temperature"] == 0.0
    assert plain["judge"]["template"] == "pairwise" and "api_key" not in json.dumps(plain["judge"])
    assert plain["summary"]["first_position_win_rate"] == 0.5 and biased["summary"]["first_position_win_rate"] == 1.0

    sets_file = tmp_path / "sets.json"
    judge_eval(judge_server, best_of_k_sets(tmp_path / "sets.jsonl"), "--summary-json", str(sets_file))
    assert json.loads(sets_file.read_text())["kind"] == "best_of_k"


def test_summary_json_is_checked_before_judging(judge_server: JudgeServerProcess, tmp_path: Path,
                                                clean_judge_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = length_pairs(tmp_path / "pairs.jsonl", longer_text_quality=8)
    base = ["judge", "eval", "--pairs", str(pairs), "--base-url", judge_server.base_url]
    assert main([*base, "--summary-json", str(pairs)]) == 2
    assert f"--summary-json {pairs}: is the --pairs file" in capsys.readouterr().err
    same = str(tmp_path / "x.json")
    assert main([*base, "--summary-json", same, "--out", same]) == 2
    assert "is also the --out file" in capsys.readouterr().err
    assert judge_server.stats()["requests"] == 0


def test_shipped_best_of_k_example_runs(judge_server: JudgeServerProcess) -> None:
    summary = judge_eval(judge_server, ROOT / "examples" / "best_of_k.jsonl")
    assert summary["sets"] >= 3 and summary["judge_failures"] == 0 and summary["parse_failures"] == 0


def test_ctrl_c_during_best_of_k_reports_only_complete_sets(judge_server: JudgeServerProcess,
                                                            tmp_path: Path) -> None:
    judge_server.configure(latency_s=0.2)
    sets = write_jsonl(tmp_path / "sets.jsonl", [
        {"id": f"s{n}", "prompt": "p", "chosen": f"QUALITY=9 best {n}", "rejected": [f"QUALITY=2 a {n}",
                                                                                   f"QUALITY=1 b {n}"]}
        for n in range(8)])
    out = tmp_path / "out.jsonl"
    process = cli_process("judge", "eval", "--pairs", str(sets), "--json", "--out", str(out), "--base-url",
                          judge_server.base_url, "--max-concurrency", "2")
    wait_for_requests(judge_server, 16)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    summary = json.loads(stdout)
    done = summary["sets"]
    assert 1 <= done < 8 and summary["judgements"] == 6 * done and summary["accuracy"] == 1.0
    assert f"interrupted: {done} of 8 set(s) judged" in stderr and "Traceback" not in stderr
    assert len(out.read_text().splitlines()) == done


def test_help_explains_best_of_k_and_the_summary_file() -> None:
    result = run_cli("judge", "eval", "--help")
    assert result.returncode == 0
    for text in ("best-of-k", "--summary-json", "length bias", "k(k-1)"):
        assert text in result.stdout


def test_judge_compare_puts_two_summary_files_side_by_side(judge_server: JudgeServerProcess, tmp_path: Path,
                                                           clean_judge_env: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pairs = length_pairs(tmp_path / "pairs.jsonl", longer_text_quality=8)
    base, new, other = tmp_path / "base.json", tmp_path / "new.json", tmp_path / "other.json"
    judge_eval(judge_server, pairs, "--summary-json", str(base))
    judge_server.configure(first_position_bonus=10.0)
    judge_eval(judge_server, pairs, "--summary-json", str(new), "--temperature", "0.7")
    judge_eval(judge_server, pairs, "--summary-json", str(other), "--limit", "2")

    assert main(["judge", "compare", str(base), str(new), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["same_input"] is True
    assert comparison["differences"] == {"judge.temperature": {"base": 0.1, "new": 0.7}}
    assert comparison["metrics"]["first_position_win_rate"] == {"base": 0.5, "new": 1.0, "delta": 0.5}
    assert comparison["metrics"]["accuracy_both_orders"]["delta"] == -0.5

    assert main(["judge", "compare", str(base), str(other)]) == 0
    out, err = capsys.readouterr()
    assert "measured different inputs" in err and "differs: input.limit: None -> 2" in out
    assert "first_position_win_rate" in out

    sets = tmp_path / "sets.json"
    judge_eval(judge_server, best_of_k_sets(tmp_path / "sets.jsonl"), "--summary-json", str(sets))
    assert main(["judge", "compare", str(base), str(sets)]) == 2
    assert "only summaries of the same kind can be compared" in capsys.readouterr().err
    assert main(["judge", "compare", str(base), str(pairs)]) == 2
    assert f"{pairs}, line 2: not valid JSON" in capsys.readouterr().err  # a JSONL file, not a summary
    (tmp_path / "list.json").write_text("[1, 2]")
    assert main(["judge", "compare", str(base), str(tmp_path / "list.json")]) == 2
    assert "expected a JSON object written by `judge eval --summary-json`, got array" in capsys.readouterr().err


def test_M23_a_repeated_rejected_answer_is_judged_once_and_the_cost_is_stated(judge_server: JudgeServerProcess,
                                                                              tmp_path: Path) -> None:
    sets = write_jsonl(tmp_path / "sets.jsonl", [
        {"id": "dup", "prompt": "p", "chosen": "QUALITY=9 best", "rejected": ["QUALITY=3 b"] * 3},
        {"id": "ok", "prompt": "p", "chosen": "QUALITY=9 top", "rejected": ["QUALITY=2 y", "QUALITY=1 z"]}])
    result = call_cli("judge", "eval", "--pairs", str(sets), "--json", "--base-url", judge_server.base_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dropped_repeated_rejected"] == 2
    assert summary["mean_candidates"] == 2.5 and summary["random_baseline"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert summary["judgements"] == 8 and judge_server.stats()["requests"] == 8  # 2x1 + 3x2: no copy met itself
    assert summary["accuracy"] == 1.0
    assert f"{sets}: dropped 2 repeated rejected answer(s) in 1 set(s), ids (copies): dup (2)" in result.stderr
    assert "2 set(s) cost 8 judge call(s)" in result.stderr


def write_summary(path: Path, summary: dict) -> Path:
    path.write_text(json.dumps({"kind": "pairs", "complete": True, "input": {"sha256": "x", "limit": None},
                                "judge": {"model": "judge"}, "summary": summary}))
    return path


def test_M16_judge_compare_names_the_metrics_it_could_not_compare(tmp_path: Path) -> None:
    base = write_summary(tmp_path / "base.json", {"accuracy": 0.5, "note": "old", "old_metric": 1, "seen": None})
    new = write_summary(tmp_path / "new.json", {"accuracy": 0.75, "note": "new", "new_metric": 2, "seen": 3})
    result = call_cli("judge", "compare", str(base), str(new))
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "old_metric" not in result.stdout
    assert (f"metrics not compared (only in {base}: old_metric; only in {new}: new_metric; not numbers: note, seen)"
            in result.stderr)
    as_json = call_cli("judge", "compare", str(base), str(new), "--json")
    comparison = json.loads(as_json.stdout)
    assert comparison["metrics"] == {"accuracy": {"base": 0.5, "new": 0.75, "delta": 0.25}}
    assert comparison["only_in_base"] == ["old_metric"] and comparison["only_in_new"] == ["new_metric"]
    assert comparison["not_numeric"] == ["note", "seen"]

    other = write_summary(tmp_path / "other.json", {"score": 0.5, "note": "x"})
    for extra in ((), ("--json",)):
        empty = call_cli("judge", "compare", str(base), str(other), *extra)
        assert empty.returncode == 2 and empty.stdout == ""
        assert f"{base} and {other} have no numeric metric in common" in empty.stderr
        assert f"only in {other}: score" in empty.stderr
