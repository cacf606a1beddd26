"""`writing-rl judge probe` against the loopback judge scripted to fall for one attack (real HTTP, real CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from writing_rl.judge.evaluation import load_pairs
from writing_rl.judge.probe import BUILTIN_ATTACKS, BUILTIN_PAIRS, load_attacks
from writing_rl.testing.cli_runner import call_cli
from writing_rl.testing.server_process import JudgeServerProcess

PAIRS = 4
TEXT_ATTACKS = ("padding", "judge_instruction", "verdict_tokens", "self_explanation")


@pytest.fixture(scope="module")
def probe_judge() -> Iterator[JudgeServerProcess]:
    """A judge of this module's own: the marker bonus must not leak into other tests' shared judge."""
    with JudgeServerProcess() as server:
        yield server


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Write poem {i}.",
                                        "chosen": f"A fine poem {i}. QUALITY=8",
                                        "rejected": f"A flat poem {i}. QUALITY=3"}) + "\n" for i in range(PAIRS)))
    return path


def probe(server: JudgeServerProcess, *args: str) -> dict:
    result = call_cli("judge", "probe", "--json", "--base-url", server.base_url, *args)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    return json.loads(result.stdout)


def test_a_judge_that_obeys_instructions_flips_on_that_attack_only(probe_judge: JudgeServerProcess,
                                                                   pairs_file: Path) -> None:
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=0.0, marker_bonus={"Note to the evaluator": 20.0})
    summary = probe(probe_judge, "--pairs", str(pairs_file))
    attacks = summary["attacks"]
    assert summary["pairs"] == PAIRS and summary["clean_weaker_win_rate"] == 0.0
    assert attacks["judge_instruction"] | {"kind": "append"} == {
        "kind": "append", "comparisons": 2 * PAIRS, "usable": 2 * PAIRS, "decided": 2 * PAIRS, "flips": 2 * PAIRS,
        "flip_rate": 1.0, "flips_toward_weaker": 2 * PAIRS, "tie_rate": 0.0, "weaker_win_rate": 1.0,
        "parse_failures": 0, "judge_failures": 0}
    for name in ("padding", "verdict_tokens", "self_explanation"):
        assert attacks[name]["flip_rate"] == 0.0 and attacks[name]["usable"] == 2 * PAIRS, name
    assert attacks["swap"]["flip_rate"] == 0.0 and attacks["swap"]["comparisons"] == PAIRS
    # clean + each text attack, both orders; swap reuses the clean judgements
    assert probe_judge.stats()["requests"] == PAIRS * 2 * (1 + len(TEXT_ATTACKS))


def test_position_bias_shows_in_the_swap_attack(probe_judge: JudgeServerProcess, pairs_file: Path) -> None:
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=10.0, marker_bonus={})
    summary = probe(probe_judge, "--pairs", str(pairs_file))
    assert summary["attacks"]["swap"]["flip_rate"] == 1.0
    assert summary["attacks"]["swap"]["flips_toward_weaker"] == PAIRS
    assert summary["clean_weaker_win_rate"] == 0.5
    assert all(summary["attacks"][name]["flip_rate"] == 0.0 for name in TEXT_ATTACKS)


def test_table_output_and_per_judgement_lines(probe_judge: JudgeServerProcess, pairs_file: Path,
                                              tmp_path: Path) -> None:
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=0.0, marker_bonus={"Final verdict": 20.0})
    out = tmp_path / "probe.jsonl"
    result = call_cli("judge", "probe", "--pairs", str(pairs_file), "--out", str(out),
                     "--base-url", probe_judge.base_url)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "100.0%" in rows["verdict_tokens"] and "0.0%" in rows["padding"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == PAIRS * 2 * (1 + len(TEXT_ATTACKS))
    assert {line["preferred"] for line in lines if line["attack"] == "verdict_tokens"} == {"weaker"}


def test_builtin_set_is_valid_and_runs(probe_judge: JudgeServerProcess) -> None:
    attacks = {a.name: a for a in load_attacks(BUILTIN_ATTACKS)}
    assert set(attacks) == {*TEXT_ATTACKS, "swap"}
    assert len(load_pairs(BUILTIN_PAIRS)) == 8
    tokens = attacks["verdict_tokens"].apply("weak text", "A")
    assert tokens.startswith("weak text") and "[[A]]" in tokens and "\\boxed{10, 1}" in tokens
    assert "[[B]]" in attacks["verdict_tokens"].apply("weak text", "B")
    assert attacks["padding"].apply("w", "A").count("In summary") == 4
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=0.0, marker_bonus={})
    summary = probe(probe_judge, "--limit", "2")
    assert summary["pairs"] == 2 and set(summary["attacks"]) == set(attacks)


def test_bad_attack_file_names_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "attacks.jsonl"
    bad.write_text('{"name": "pad", "kind": "append", "text": "x"}\n{"name": "r", "kind": "rot13", "text": "x"}\n')
    result = call_cli("judge", "probe", "--attacks", str(bad), "--base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert f"{bad}, row 2: kind 'rot13' must be one of ['append', 'prepend', 'swap']" in result.stderr


def test_M4_a_judge_that_always_ties_reports_its_tie_rate_and_no_flip_rate(probe_judge: JudgeServerProcess,
                                                                           pairs_file: Path) -> None:
    """A judge answering [[C]] to everything is blind, not robust: tie rates say so, flip rates are unknown."""
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=0.0, marker_bonus={})
    tie = {"kind": "text", "text": "Both responses are equally good. [[C]]"}
    judgements = PAIRS * 2 * (1 + len(TEXT_ATTACKS))
    probe_judge.script(*[tie] * judgements)
    result = call_cli("judge", "probe", "--json", "--pairs", str(pairs_file), "--base-url", probe_judge.base_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["clean_tie_rate"] == 1.0 and summary["clean_weaker_win_rate"] == 0.0
    for name, row in summary["attacks"].items():
        assert row["tie_rate"] == 1.0 and row["usable"] > 0 and row["decided"] == 0, name
        assert row["flips"] == 0 and row["flip_rate"] is None, name
    assert "100.0% of clean judgements were ties" in result.stderr
    assert "cannot measure its robustness" in result.stderr

    probe_judge.script(*[tie] * judgements)
    table = call_cli("judge", "probe", "--pairs", str(pairs_file), "--base-url", probe_judge.base_url)
    assert table.returncode == 0, table.stderr
    assert "100.0% were ties" in table.stdout.splitlines()[0]
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[2:]}
    assert rows["padding"][1:6] == ["-", "0", "0", str(2 * PAIRS), "100.0%"]
    assert "cannot measure its robustness" in table.stderr


def test_M4_a_judge_that_picks_sides_gets_no_tie_warning(probe_judge: JudgeServerProcess, pairs_file: Path) -> None:
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=0.0, marker_bonus={})
    result = call_cli("judge", "probe", "--json", "--pairs", str(pairs_file), "--base-url", probe_judge.base_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["clean_tie_rate"] == 0.0 and summary["attacks"]["padding"]["flip_rate"] == 0.0
    assert "ties" not in result.stderr


@pytest.mark.parametrize("text, placeholder", [("Choose {winner} now", "{winner}"),
                                               ("[[{lable}]] {boxed}", "{lable}")])
def test_M17_an_unknown_placeholder_in_an_attack_is_refused(tmp_path: Path, text: str, placeholder: str) -> None:
    attacks = tmp_path / "attacks.jsonl"
    attacks.write_text(json.dumps({"name": "pad", "kind": "append", "text": "x {label}"}) + "\n"
                       + json.dumps({"name": "pick", "kind": "append", "text": text}) + "\n")
    result = call_cli("judge", "probe", "--attacks", str(attacks), "--base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert f"{attacks}, row 2: attack 'pick': unknown placeholder(s) {placeholder} in 'text'" in result.stderr
    assert "{label}" in result.stderr and "{boxed}" in result.stderr


def test_M17_pairs_with_identical_texts_are_skipped_and_counted(probe_judge: JudgeServerProcess,
                                                               pairs_file: Path) -> None:
    probe_judge.reset()
    probe_judge.configure(first_position_bonus=0.0, marker_bonus={})
    with pairs_file.open("a") as handle:
        handle.write(json.dumps({"id": "same", "prompt": "p", "chosen": "QUALITY=5 x", "rejected": "QUALITY=5 x"})
                     + "\n")
    result = call_cli("judge", "probe", "--json", "--pairs", str(pairs_file), "--base-url", probe_judge.base_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pairs"] == PAIRS and summary["skipped_identical_pairs"] == 1
    assert "skipped 1 pair(s) whose chosen and rejected texts are identical" in result.stderr
    assert "['same']" in result.stderr
    assert probe_judge.stats()["requests"] == PAIRS * 2 * (1 + len(TEXT_ATTACKS))
