"""`writing-rl data pairs` (LitBench CSV, generic JSONL/JSON/parquet) and `writing-rl data genrm-rl` (both orders,
verifiable ground truth): real files, the real CLI in a subprocess for the user-facing paths."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from writing_rl.data.preference_pairs import build_pairs
from writing_rl.data.rows import DataError
from writing_rl.genrm.rl_rows import GENRM_DATA_SOURCE, build_genrm_rl
from writing_rl.prompts import TemplateError, load_template
from writing_rl.testing.cli_runner import REPO, call_cli

LITBENCH_SAMPLE = REPO / "examples" / "litbench_sample.csv"


def pair(i: int, **extra: object) -> dict[str, object]:
    return {"prompt": f"Write piece {i}.", "chosen": f"A fine piece number {i}.", "rejected": f"bad {i}", **extra}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read(path: Path) -> list[dict[str, object]]:
    return pq.read_table(path).to_pylist()


def test_litbench_csv_is_detected_and_converted_with_stable_ids(tmp_path: Path) -> None:
    result = call_cli("data", "pairs", str(LITBENCH_SAMPLE), "--out-dir", str(tmp_path / "a"), "--test-size", "1",
                     "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["layout"], report["detected"], report["read"], report["kept"]) == ("litbench", True, 4, 4)
    train, test = read(tmp_path / "a" / "train.parquet"), read(tmp_path / "a" / "test.parquet")
    assert (len(train), len(test)) == (3, 1)
    assert list(train[0]) == ["id", "prompt", "chosen", "rejected"]
    source = pd.read_csv(LITBENCH_SAMPLE)
    by_prompt = {r["prompt"]: r for r in train + test}
    for _, row in source.iterrows():  # multi-line, quoted cells survive; upvotes and timestamps are left out
        assert by_prompt[row["prompt"]]["chosen"] == row["chosen_story"]
        assert by_prompt[row["prompt"]]["rejected"] == row["rejected_story"]
    # ids come from the texts: the same pair gets the same id in another build with another split
    other = build_pairs(LITBENCH_SAMPLE, tmp_path / "b", test_size=2, seed=7)
    assert other.layout == "litbench"
    rebuilt = read(tmp_path / "b" / "train.parquet") + read(tmp_path / "b" / "test.parquet")
    assert {r["prompt"]: r["id"] for r in rebuilt} == {r["prompt"]: r["id"] for r in train + test}


def test_generic_jsonl_drops_duplicates_identical_and_contradictory_pairs(tmp_path: Path) -> None:
    contradiction = pair(5)
    rows = [pair(0, id="a"), pair(1, id="b"), pair(0, id="a-again"),  # duplicate texts under another id
            {"prompt": "p", "chosen": "same text", "rejected": " same text "},  # identical (whitespace aside)
            contradiction, {**contradiction, "chosen": contradiction["rejected"], "rejected": contradiction["chosen"]},
            pair(6, id="c")]
    result = call_cli("data", "pairs", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--out-dir", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert "layout generic (detected from the columns); 7 rows read" in result.stdout
    assert "dropped 2 pair(s): contradictory" in result.stdout
    assert "dropped 1 pair(s): duplicate" in result.stdout and "dropped 1 pair(s): identical texts" in result.stdout
    train = read(tmp_path / "o" / "train.parquet")
    assert [r["id"] for r in train] == ["a", "b", "c"]
    assert not (tmp_path / "o" / "test.parquet").exists()


def test_parquet_input_with_explicit_layout_and_length_filters(tmp_path: Path) -> None:
    rows = [pair(0, id="short", chosen="one two"), pair(1, id="ok", chosen="one two three four"),
            pair(2, id="long", chosen=" ".join(["w"] * 30))]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    result = build_pairs(tmp_path / "in.parquet", tmp_path / "o", layout="generic", min_words=2, max_words=10)
    assert not result.detected and result.dropped == {"too long": 1}
    assert [r["id"] for r in read(tmp_path / "o" / "train.parquet")] == ["short", "ok"]
    # "bad N" has 2 words: min 3 drops both pairs whose rejected text is that short
    with pytest.raises(DataError, match=r"no pair left after filtering \({'too short': 3}\)"):
        build_pairs(tmp_path / "in.parquet", tmp_path / "p", min_words=3)


@pytest.mark.parametrize(("rows", "options", "message"), [
    ([{"prompt": "p", "chosen_story": "x", "chosen": "y"}], {},
     "no known layout in columns ['chosen', 'chosen_story', 'prompt']; expected litbench: prompt, chosen_story, "
     "rejected_story; generic: prompt, chosen, rejected"),
    ([{"prompt": "p", "chosen": "x", "rejected": "y", "chosen_story": "x", "rejected_story": "y"}], {},
     "the columns fit more than one layout (litbench, generic); choose one with --layout"),
    ([pair(0)], {"layout": "litbench"}, "--layout litbench needs column(s) ['chosen_story', 'rejected_story']"),
    ([pair(0), pair(1, rejected=3)], {}, "row 2: field 'rejected' must be a string, got number"),
    ([pair(0), pair(1, id=1.5)], {}, "row 2: 'id' must be a string, got number 1.5"),
    ([pair(0, id="x"), pair(1, id="x")], {}, "row 2: duplicate id 'x' (first in row 1)"),
    ([pair(0), pair(1)], {"test_size": 2}, "--test-size 2 must be between 0 and 1 for 2 pairs"),
    ([pair(0)], {"min_words": 5, "max_words": 2}, "--min-words 5 is above --max-words 2: no pair could pass"),
])
def test_bad_input_names_file_row_and_column(tmp_path: Path, rows: list[dict[str, object]],
                                             options: dict[str, object], message: str) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(DataError) as error:
        build_pairs(path, tmp_path / "o", **options)  # type: ignore[arg-type]
    assert message in str(error.value) and (str(path) in str(error.value) or "--" in message)


def test_the_cli_reports_bad_input_as_an_error_with_exit_2(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [pair(0), pair(1, chosen=None)])
    result = call_cli("data", "pairs", str(path), "--out-dir", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"writing-rl: error: {path}, row 2: missing field 'chosen'"
    assert not (tmp_path / "o").exists()


def test_csv_problems_name_the_row_and_column(tmp_path: Path) -> None:
    frame = pd.read_csv(LITBENCH_SAMPLE)
    frame.loc[2, "rejected_story"] = ""
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad.csv, row 3: field 'rejected_story' is empty"):
        build_pairs(tmp_path / "bad.csv", tmp_path / "o")
    (tmp_path / "latin1.csv").write_bytes("prompt,chosen,rejected\ncaf\xe9,a,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv, line 2: not valid UTF-8"):
        build_pairs(tmp_path / "latin1.csv", tmp_path / "o")


def test_test_size_zero_moves_an_old_test_split_aside(tmp_path: Path) -> None:
    out = tmp_path / "o"
    build_pairs(LITBENCH_SAMPLE, out, test_size=1)
    result = build_pairs(LITBENCH_SAMPLE, out, test_size=0)
    assert result.written == {out / "train.parquet": 4}
    assert result.moved_stale == out / "test.parquet.stale" and not (out / "test.parquet").exists()


def test_genrm_rl_rows_carry_both_orders_and_the_preferred_side(tmp_path: Path) -> None:
    pairs_dir, rl_dir = tmp_path / "pairs", tmp_path / "rl"
    build_pairs(LITBENCH_SAMPLE, pairs_dir, test_size=1)
    result = call_cli("data", "genrm-rl", str(pairs_dir), "--out-dir", str(rl_dir))
    assert result.returncode == 0, result.stderr
    assert "train.parquet: 6 rows (3 pairs x 2 orders)" in result.stdout
    template = load_template("genrm")
    pairs = {r["id"]: r for split in ("train", "test") for r in read(pairs_dir / f"{split}.parquet")}
    for split, count in (("train", 6), ("test", 2)):
        rows = read(rl_dir / f"{split}.parquet")
        assert len(rows) == count
        for row in rows:
            info, side = row["extra_info"], row["reward_model"]["ground_truth"]["preferred"]
            source = pairs[info["pair_id"]]
            first, second = ((source["chosen"], source["rejected"]) if side == "A"
                             else (source["rejected"], source["chosen"]))
            assert row["data_source"] == GENRM_DATA_SOURCE
            assert row["reward_model"]["ground_truth"] == {"preferred": side}
            assert row["prompt"] == template.render(prompt=source["prompt"], response_a=first, response_b=second)
            assert info == {"index": f"{info['pair_id']}:{side}", "pair_id": info["pair_id"], "preferred": side,
                            "split": split}
        sides: dict[str, set[str]] = {}
        for row in rows:
            sides.setdefault(row["extra_info"]["pair_id"], set()).add(row["reward_model"]["ground_truth"]["preferred"])
        assert len(sides) == count // 2 and all(s == {"A", "B"} for s in sides.values())


def test_genrm_rl_refuses_what_cannot_train(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no train.parquet in this folder; run `writing-rl data pairs"):
        build_genrm_rl(tmp_path, tmp_path / "rl")
    same = write_jsonl(tmp_path / "same.jsonl", [pair(0), pair(1, rejected="A fine piece number 1.")])
    with pytest.raises(DataError, match=r"same.jsonl, row 2: 'chosen' and 'rejected' are the same text"):
        build_genrm_rl(same, tmp_path / "rl")
    with pytest.raises(TemplateError, match=r"declares output = 'verdict' but this use needs 'scores'"):
        build_genrm_rl(write_jsonl(tmp_path / "ok.jsonl", [pair(0)]), tmp_path / "rl", template="pairwise")
    # a plain JSONL of pairs (no ids) works: ids are positions, rows go to train.parquet
    written, _ = build_genrm_rl(tmp_path / "ok.jsonl", tmp_path / "rl")
    assert written == {tmp_path / "rl" / "train.parquet": 2}
    assert {r["extra_info"]["index"] for r in read(tmp_path / "rl" / "train.parquet")} == {"0:A", "0:B"}


def test_M5_test_size_splits_by_shared_prompt_and_text(tmp_path: Path) -> None:
    """5 prompts x 4 pairs sharing one chosen story each (LitBench-like): no prompt and no story in both splits."""
    rows = [{"id": f"p{p}-{k}", "prompt": f"Prompt {p}", "chosen": f"The chosen story of prompt {p}.",
             "rejected": f"Rejected story {k} of prompt {p}."} for p in range(5) for k in range(4)]
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = call_cli("data", "pairs", str(source), "--out-dir", str(tmp_path / "out"), "--test-size", "3")
    assert result.returncode == 0, result.stderr
    train = pd.read_parquet(tmp_path / "out/train.parquet")
    test = pd.read_parquet(tmp_path / "out/test.parquet")
    assert len(test) == 4 and len(train) == 16  # one whole prompt's group: at least 3 pairs
    assert not set(train["prompt"]) & set(test["prompt"])
    assert not (set(train["chosen"]) | set(train["rejected"])) & (set(test["chosen"]) | set(test["rejected"]))
    refused = call_cli("data", "pairs", str(source), "--out-dir", str(tmp_path / "big"), "--test-size", "17")
    assert refused.returncode == 2 and "leaves none to train on" in refused.stderr


@pytest.mark.parametrize(("second", "message"), [
    ({"prompt": "P", "chosen": "B text", "rejected": "A text"}, "contradicts (chosen and rejected swapped)"),
    ({"prompt": "P", "chosen": "A text", "rejected": "B text"}, "repeats"),
])
def test_M6_genrm_rl_refuses_contradictory_or_repeated_raw_pairs(tmp_path: Path, second: dict[str, str],
                                                                 message: str) -> None:
    source = tmp_path / "raw.jsonl"
    source.write_text(json.dumps({"prompt": "P", "chosen": "A text", "rejected": "B text"}) + "\n"
                      + json.dumps(second) + "\n")
    result = call_cli("data", "genrm-rl", str(source), "--out-dir", str(tmp_path / "rl"))
    assert result.returncode == 2 and message in result.stderr and "row 1" in result.stderr
    assert "writing-rl data pairs" in result.stderr and not (tmp_path / "rl/train.parquet").exists()


def test_M21_data_pairs_input_messages_list_csv_and_say_how_ids_are_made(tmp_path: Path) -> None:
    folder = tmp_path / "pairs_dir"
    folder.mkdir()
    result = call_cli("data", "pairs", str(folder), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "give a preference file (.jsonl, .json, .csv or .parquet)" in result.stderr
    text = tmp_path / "pairs.txt"
    text.write_text("prompt,chosen,rejected\n")
    result = call_cli("data", "pairs", str(text), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and ".csv" in result.stderr
    row = {"prompt": "P", "chosen": "A text", "rejected": "B text"}
    source = tmp_path / "clash.jsonl"
    from writing_rl.data.preference_pairs import _content_id

    source.write_text(json.dumps(row) + "\n" + json.dumps({**row, "prompt": "Q", "id": _content_id("P", "A text",
                                                                                                  "B text")}) + "\n")
    result = call_cli("data", "pairs", str(source), "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "generated from the texts of row 1" in result.stderr
