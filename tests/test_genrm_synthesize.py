"""`writing-rl genrm synthesize` as a user runs it: the real CLI in a subprocess, the loopback judge in scores
mode as the teacher, real parquet files read back by verl's own multi-turn SFT dataset."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from writing_rl.cli import main
from writing_rl.prompts import load_template
from writing_rl.testing.cli_runner import call_cli, cli_process, run_cli, wait_for_requests
from writing_rl.testing.server_process import JudgeServerProcess

GENRM = load_template("genrm")


@pytest.fixture
def teacher(judge_server: JudgeServerProcess) -> JudgeServerProcess:
    """The loopback judge answering `\\boxed{q_a, q_b}` with each text's QUALITY as its score."""
    judge_server.configure(mode="scores")
    return judge_server


def write_pairs(path: Path, qualities: list[tuple[float, float]]) -> Path:
    """One pair per (chosen quality, rejected quality); the texts carry their quality for the teacher."""
    with path.open("w", encoding="utf-8") as handle:
        for n, (chosen, rejected) in enumerate(qualities):
            handle.write(json.dumps({"id": f"p{n}", "prompt": f"Write story {n}.",
                                     "chosen": f"QUALITY={chosen:g} a vivid story {n}",
                                     "rejected": f"QUALITY={rejected:g} a flat story {n}"}) + "\n")
    return path


def synthesize(teacher: JudgeServerProcess, pairs: Path, out: Path, *extra: str,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return call_cli("genrm", "synthesize", "--pairs", str(pairs), "--out", str(out), "--json",
                   "--base-url", teacher.base_url, "--model", "test-judge", *extra, env=env)


def test_only_pairs_right_in_both_orders_are_kept_and_both_orders_become_rows(
        teacher: JudgeServerProcess, tmp_path: Path) -> None:
    # first_position_bonus 2: the teacher adds 2 to whatever it reads first, so a gap of 1 survives
    # only the order that shows the chosen text first
    teacher.configure(first_position_bonus=2.0)
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 3), (5, 4), (2, 7), (7, 1)])
    out = tmp_path / "sft.parquet"
    result = synthesize(teacher, pairs, out)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pairs"] == 4 and report["judgements"] == 8 and teacher.stats()["requests"] == 8
    assert report["kept_pairs"] == 2 and report["kept_rate"] == 0.5 and report["sft_rows"] == 4
    assert report["dropped_right_in_one_order"] == 1  # (5, 4): right only when chosen is shown first
    assert report["dropped_wrong_in_both_orders"] == 1 and report["dropped_no_verdict"] == 0
    assert report["both_order_consistency"] == 0.75  # (5, 4) named A both times: a different text each order
    assert report["prompt_tokens"] > 0 and report["cost_usd"] is None
    assert report["cache"] == str(tmp_path / "sft.judge-cache.sqlite")

    rows = pq.read_table(out).to_pylist()
    assert [(r["pair_id"], r["order"]) for r in rows] == [
        ("p0", "chosen_first"), ("p0", "chosen_second"), ("p3", "chosen_first"), ("p3", "chosen_second")]
    assert len({r["id"] for r in rows}) == 4
    first, second = rows[0], rows[1]
    for row, (text_a, text_b) in ((first, ("vivid", "flat")), (second, ("flat", "vivid"))):
        system, user, assistant = row["messages"]
        assert system == {"role": "system", "content": GENRM.system}
        assert user["role"] == "user" and "[Writing Request]\nWrite story 0." in user["content"]
        shown_a = user["content"].split("[The Start of Response A]\n")[1].split("\n[The End")[0]
        shown_b = user["content"].split("[The Start of Response B]\n")[1].split("\n[The End")[0]
        assert text_a in shown_a and text_b in shown_b
        assert assistant["role"] == "assistant" and assistant["content"].startswith("Principles:")
    assert first["messages"][2]["content"].endswith("\\boxed{10, 3}") and first["teacher_scores"] == [10.0, 3.0]
    assert second["messages"][2]["content"].endswith("\\boxed{5, 8}") and second["teacher_scores"] == [5.0, 8.0]


def test_a_resumed_synthesis_pays_only_for_what_is_missing(teacher: JudgeServerProcess, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2), (7, 3), (6, 1), (9, 4), (5, 2)])
    out = tmp_path / "sft.parquet"
    quick = synthesize(teacher, pairs, out, "--limit", "2")
    assert quick.returncode == 0, quick.stderr
    assert json.loads(quick.stdout)["pairs"] == 2 and teacher.stats()["requests"] == 4

    full = synthesize(teacher, pairs, out)
    assert full.returncode == 0, full.stderr
    report = json.loads(full.stdout)
    assert report["cached_judgements"] == 4 and report["http_requests"] == 6 and teacher.stats()["requests"] == 10
    assert report["sft_rows"] == 10
    written = pq.read_table(out).to_pylist()

    again = synthesize(teacher, pairs, out)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["http_requests"] == 0 and teacher.stats()["requests"] == 10
    assert pq.read_table(out).to_pylist() == written


def test_dry_run_sends_nothing_and_estimates_calls_tokens_and_cost(teacher: JudgeServerProcess,
                                                                 tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2), (7, 3), (6, 1)])
    out = tmp_path / "sft.parquet"
    result = synthesize(teacher, pairs, out, "--dry-run", "--max-tokens", "500",
                        "--usd-per-mtok-in", "3", "--usd-per-mtok-out", "15")
    assert result.returncode == 0, result.stderr
    estimate = json.loads(result.stdout)
    assert teacher.stats()["requests"] == 0
    assert not out.exists() and not (tmp_path / "sft.judge-cache.sqlite").exists()
    assert estimate["pairs"] == 3 and estimate["calls"] == 6 and estimate["max_completion_tokens"] == 3000
    assert estimate["max_cost_usd"] == pytest.approx((estimate["estimated_prompt_tokens"] * 3 + 3000 * 15) / 1e6)

    secret = "sk-teacher-secret-24680"
    paid = synthesize(teacher, pairs, out, "--max-tokens", "500", "--usd-per-mtok-in", "3",
                      "--usd-per-mtok-out", "15", "--api-key-env", "TEACHER_KEY", env={"TEACHER_KEY": secret})
    report = json.loads(paid.stdout)
    assert teacher.stats()["last_authorization"] == f"Bearer {secret}"
    assert secret not in paid.stdout + paid.stderr
    assert all(secret.encode() not in f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
    # the estimate (4 characters a token) is the loopback judge's own count here
    assert abs(report["prompt_tokens"] - estimate["estimated_prompt_tokens"]) <= 6
    assert report["cost_usd"] == pytest.approx((report["prompt_tokens"] * 3 + report["completion_tokens"] * 15) / 1e6)


def test_the_sft_file_feeds_verls_multiturn_sft_dataset_with_loss_on_the_teacher_only(
        teacher: JudgeServerProcess, tmp_path: Path, tokenizer) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    out = tmp_path / "sft.parquet"
    result = synthesize(teacher, write_pairs(tmp_path / "pairs.jsonl", [(8, 2)]), out)
    assert result.returncode == 0, result.stderr
    config = OmegaConf.create({"messages_key": "messages", "max_length": 4096, "truncation": "error",
                               "pad_mode": "no_padding"})
    dataset = MultiTurnSFTDataset(str(out), tokenizer, config)
    assert len(dataset) == 2
    rows = pq.read_table(out).to_pylist()
    for n, row in enumerate(rows):
        item = dataset[n]
        trained = tokenizer.decode(item["input_ids"][item["loss_mask"].bool()])
        teacher_output = row["messages"][2]["content"]
        # the loss covers the assistant turn only: the teacher's output, up to its final scores. verl masks the
        # generation prompt by its token count; with this test template's plain-text role markers a BPE merge
        # across the marker's newline moves that cut by a few characters (real chat templates use special tokens)
        assert trained.strip() in f"<|assistant|>\n{teacher_output}\n"
        assert trained.rstrip().endswith(teacher_output[-40:]) and len(trained) >= len(teacher_output) - 8
        assert "[Writing Request]" not in trained


def test_ctrl_c_keeps_the_finished_pairs_and_a_rerun_finishes_for_the_rest(teacher: JudgeServerProcess,
                                                                           tmp_path: Path) -> None:
    teacher.configure(latency_s=0.3)
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2)] * 12)
    out = tmp_path / "sft.parquet"
    args = ["genrm", "synthesize", "--pairs", str(pairs), "--out", str(out), "--json", "--base-url",
            teacher.base_url, "--max-concurrency", "2"]
    process = cli_process(*args)
    wait_for_requests(teacher, 7)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    done = json.loads(stdout)["pairs"]
    assert 1 <= done < 12 and f"interrupted: {done} of 12 pair(s) judged" in stderr
    assert len(pq.read_table(out)) == 2 * done

    teacher.configure(latency_s=0.0)
    paid_before = teacher.stats()["requests"]
    finished = call_cli(*args)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["sft_rows"] == 24 and report["cached_judgements"] >= 2 * done
    assert report["http_requests"] == teacher.stats()["requests"] - paid_before <= 24 - 2 * done


def test_no_verdict_at_all_exits_1(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    # the loopback judge in verdict mode answers [[A]]/[[B]], never the \boxed{a, b} the GenRM prompt asks for
    result = synthesize(judge_server, write_pairs(tmp_path / "pairs.jsonl", [(8, 2)]), tmp_path / "sft.parquet")
    assert result.returncode == 1
    assert json.loads(result.stdout)["parse_failures"] == 2 and "no judgement gave a verdict" in result.stderr


def test_bad_input_is_refused_before_anything_is_sent(teacher: JudgeServerProcess, tmp_path: Path,
                                                      clean_judge_env: None, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2)])
    base = ["genrm", "synthesize", "--pairs", str(pairs), "--base-url", teacher.base_url]

    def error(*args: str) -> str:
        assert main([*base, *args]) == 2
        return capsys.readouterr().err

    assert "give a file ending in .parquet" in error("--out", str(tmp_path / "sft.jsonl"))
    assert "is the --pairs file" in error("--out", str(tmp_path / "pairs.parquet"), "--pairs",
                                          str(tmp_path / "pairs.parquet"))
    assert "scores" in error("--out", str(tmp_path / "sft.parquet"), "--template", "pairwise")
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, as every bad option value
        main([*base, "--out", str(tmp_path / "s.parquet"), "--usd-per-mtok-in", "-1"])
    assert exit_info.value.code == 2
    assert "--usd-per-mtok-in: -1.0 must be >= 0 (US dollars per million tokens)" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": "p", "chosen": "c"}\n')
    assert f"{bad}, row 2: missing field 'rejected'" in error("--out", str(tmp_path / "s.parquet"), "--pairs",
                                                              str(bad))
    assert teacher.stats()["requests"] == 0


def test_help_explains_the_command() -> None:
    result = run_cli("genrm", "synthesize", "--help")
    assert result.returncode == 0
    for option in ("--pairs", "--out", "--limit", "--dry-run", "--usd-per-mtok-in", "--usd-per-mtok-out",
                   "--cache", "--json", "both orders"):
        assert option in result.stdout


def test_the_trace_is_the_teachers_whole_output_reasoning_included(teacher: JudgeServerProcess,
                                                                   tmp_path: Path) -> None:
    thinking = "<think>A is vivid, B is flat.</think>\nPrinciples: imagery. A: 8. B: 3.\n\\boxed{8, 3}"
    swapped = "<think>B is vivid now.</think>\nPrinciples: imagery. A: 3. B: 8.\n\\boxed{3, 8}"
    only_inside_think = "<think>I would say \\boxed{8, 3} but I ran out of"
    teacher.script({"kind": "text", "text": thinking}, {"kind": "text", "text": swapped},
                   {"kind": "text", "text": only_inside_think}, {"kind": "text", "text": swapped})
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 3), (8, 3)])
    out = tmp_path / "sft.parquet"
    result = synthesize(teacher, pairs, out, "--max-concurrency", "1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # a score box inside unfinished reasoning is no verdict: that pair is dropped, not guessed
    assert report["kept_pairs"] == 1 and report["dropped_no_verdict"] == 1 and report["parse_failures"] == 1
    rows = pq.read_table(out).to_pylist()
    assert [r["messages"][2]["content"] for r in rows] == [thinking, swapped]


def test_M9_a_run_that_would_write_fewer_rows_does_not_silently_replace_a_larger_output(
        teacher: JudgeServerProcess, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2), (7, 3), (6, 1), (9, 4)])
    out = tmp_path / "sft.parquet"
    full = synthesize(teacher, pairs, out)
    assert full.returncode == 0, full.stderr
    written = pq.read_table(out).to_pylist()
    assert len(written) == 8
    paid = teacher.stats()["requests"]

    quick = synthesize(teacher, pairs, out, "--limit", "1")
    assert quick.returncode == 2
    assert (f"--out {out}: holds 8 row(s) from an earlier run, and this run of 1 pair(s) writes 2 at most"
            in quick.stderr)
    assert "give another --out, or add --replace" in quick.stderr
    assert teacher.stats()["requests"] == paid and pq.read_table(out).to_pylist() == written

    replaced = synthesize(teacher, pairs, out, "--limit", "1", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert f"warning: replaced {out}: it held 8 row(s) from an earlier run, now 2" in replaced.stderr
    assert pq.read_table(out).to_pylist() == written[:2]
    assert "--replace" in call_cli("genrm", "synthesize", "--help").stdout


def test_M10_a_second_run_on_the_same_out_is_refused_at_once(teacher: JudgeServerProcess, tmp_path: Path) -> None:
    teacher.configure(latency_s=0.4)
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2)] * 8)
    out = tmp_path / "sft.parquet"
    first = cli_process("genrm", "synthesize", "--pairs", str(pairs), "--out", str(out), "--json", "--base-url",
                        teacher.base_url, "--max-concurrency", "1")
    try:
        wait_for_requests(teacher, 1, process=first)
        second = synthesize(teacher, pairs, out)
        assert first.poll() is None, "the first run ended before the second was tried"
    finally:
        stdout, stderr = first.communicate(timeout=120)
    assert second.returncode == 2 and second.stdout == ""
    assert (f"--out {out}: another `writing-rl genrm synthesize` is writing this file (it holds {out}.lock); "
            "wait for it to finish, or give another --out") in second.stderr
    assert first.returncode == 0, stderr
    assert json.loads(stdout)["sft_rows"] == 16 and len(pq.read_table(out)) == 16
    assert teacher.stats()["requests"] == 16  # only the first run paid

    teacher.configure(latency_s=0.0)
    again = synthesize(teacher, pairs, out)  # the lock is released with the run
    assert again.returncode == 0, again.stderr


def test_M11_the_cache_may_not_be_an_input_and_a_cache_that_is_no_database_is_named_by_its_option(
        teacher: JudgeServerProcess, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2)])
    pairs_text = pairs.read_text()
    out = tmp_path / "sft.parquet"

    as_pairs = synthesize(teacher, pairs, out, "--cache", str(pairs))
    assert as_pairs.returncode == 2
    assert f"--cache {pairs}: is the --pairs file, an input of this command" in as_pairs.stderr
    template = tmp_path / "genrm.toml"
    template.write_text(GENRM.path.read_text())
    as_template = synthesize(teacher, pairs, out, "--template", str(template), "--cache", str(template))
    assert as_template.returncode == 2
    assert f"--cache {template}: is the --template file, an input of this command" in as_template.stderr

    notes = tmp_path / "notes.sqlite"
    notes.write_text("these are my notes, not a judge cache\n" * 20)
    not_a_cache = synthesize(teacher, pairs, out, "--cache", str(notes))
    assert not_a_cache.returncode == 2
    assert (f"--cache {notes}: cannot be used as the judge cache (file is not a database); give another file with "
            "--cache") in not_a_cache.stderr
    assert "cache_path" not in not_a_cache.stderr
    assert teacher.stats()["requests"] == 0 and pairs.read_text() == pairs_text and not out.exists()


def test_M12_an_out_that_is_a_directory_gets_a_parquet_name_suggested(teacher: JudgeServerProcess,
                                                                      tmp_path: Path) -> None:
    folder = tmp_path / "outdir.parquet"
    folder.mkdir()
    result = synthesize(teacher, write_pairs(tmp_path / "pairs.jsonl", [(8, 2)]), folder)
    assert result.returncode == 2
    assert f"--out {folder}: is a directory; give a file name, e.g. {folder / 'sft.parquet'}" in result.stderr
    assert "results.jsonl" not in result.stderr


def test_M13_nan_and_infinite_prices_are_refused_like_negative_ones(teacher: JudgeServerProcess,
                                                                    tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(8, 2)])
    for option, value in (("--usd-per-mtok-in", "nan"), ("--usd-per-mtok-out", "inf"),
                          ("--usd-per-mtok-out", "-inf")):
        result = synthesize(teacher, pairs, tmp_path / "sft.parquet", "--dry-run", f"{option}={value}")
        assert result.returncode == 2 and result.stdout == ""
        assert f"argument {option}: '{value}' is not a finite number" in result.stderr


def test_M24_a_file_that_is_not_pairs_says_what_it_looks_like_and_which_file_to_give(
        teacher: JudgeServerProcess, tmp_path: Path) -> None:
    litbench = tmp_path / "litbench.jsonl"
    litbench.write_text(json.dumps({"prompt": "[WP] A lighthouse.", "chosen_story": "QUALITY=8 The tide came.",
                                    "rejected_story": "QUALITY=2 It was a lighthouse.", "chosen_upvotes": 40,
                                    "rejected_upvotes": 3}) + "\n")
    convert = "convert it with `writing-rl data pairs FILE --out-dir DIR` and give DIR/train.parquet"
    raw = synthesize(teacher, litbench, tmp_path / "sft.parquet")
    assert raw.returncode == 2
    assert f"{litbench}, row 1: missing field 'chosen'; this looks like a raw LitBench file" in raw.stderr
    assert convert in raw.stderr
    # the other commands that read pairs share the reader, and the hint
    for command in (["judge", "eval", "--pairs", str(litbench), "--base-url", teacher.base_url],
                    ["data", "genrm-rl", str(litbench), "--out-dir", str(tmp_path / "rl")]):
        result = call_cli(*command)
        assert result.returncode == 2 and convert in result.stderr, result.stderr

    # following the hint works
    assert call_cli("data", "pairs", str(litbench), "--out-dir", str(tmp_path / "pairs")).returncode == 0
    sft = tmp_path / "sft.parquet"
    made = synthesize(teacher, tmp_path / "pairs" / "train.parquet", sft)
    assert made.returncode == 0, made.stderr

    assert call_cli("data", "genrm-rl", str(tmp_path / "pairs"), "--out-dir", str(tmp_path / "rl")).returncode == 0
    rl_rows = tmp_path / "rl" / "train.parquet"
    as_rl = synthesize(teacher, rl_rows, tmp_path / "again.parquet")
    assert as_rl.returncode == 2
    assert (f"{rl_rows}, row 1: field 'prompt' must be a string, got array; this looks like a verl RL parquet"
            in as_rl.stderr)
    assert "give the pairs file instead, the train.parquet of `writing-rl data pairs`" in as_rl.stderr

    as_sft = synthesize(teacher, sft, tmp_path / "again.parquet")
    assert as_sft.returncode == 2
    assert f"{sft}, row 1: missing field 'prompt'; this looks like an SFT parquet" in as_sft.stderr
    assert "give the pairs file it was made from, the train.parquet of `writing-rl data pairs`" in as_sft.stderr


def test_M25_every_call_404_from_a_base_url_without_v1_suggests_adding_it(teacher: JudgeServerProcess,
                                                                          tmp_path: Path) -> None:
    root = teacher.base_url.removesuffix("/v1")
    result = call_cli("genrm", "synthesize", "--pairs", str(write_pairs(tmp_path / "pairs.jsonl", [(8, 2)])),
                      "--out", str(tmp_path / "sft.parquet"), "--json", "--base-url", root, "--model", "test-judge")
    assert result.returncode == 1
    assert json.loads(result.stdout)["judge_failures"] == 2
    assert (f"no judgement gave a verdict (see judge_failures and parse_failures); every call got HTTP 404 (not "
            f"found) from {root}; OpenAI-compatible servers answer under /v1: try --base-url {root}/v1"
            in result.stderr)
