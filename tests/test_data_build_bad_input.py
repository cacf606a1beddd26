"""`writing-rl data build` and row reading under bad input (findings A5, A6, C1-C3, M11-M16 of
notes/bad-input-findings.md): real files on disk through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from writing_rl.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "writing_prompts.jsonl"


def build(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", "build", *args])
    out, err = capsys.readouterr()
    return code, out, err


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def row(**fields: Any) -> dict[str, Any]:
    return {"prompt": "Write a poem", "references": ["weak", "strong"], **fields}


def ids_of(path: Path) -> list[str]:
    return [r["extra_info"]["index"] for r in pq.read_table(path).to_pylist()]


def test_A5_stale_test_parquet_is_moved_aside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    assert build(capsys, str(EXAMPLES), "--out-dir", str(out), "--test-size", "2")[0] == 0
    old_test = (out / "test.parquet").read_bytes()
    code, stdout, _ = build(capsys, str(EXAMPLES), "--out-dir", str(out))
    assert code == 0
    assert not (out / "test.parquet").exists()
    assert (out / "test.parquet.stale").read_bytes() == old_test
    assert "moved the test.parquet of an earlier build" in stdout and "test.parquet.stale" in stdout
    assert len(ids_of(out / "train.parquet")) == 6


@pytest.mark.parametrize("name", ["train.parquet", "test.parquet"])
def test_A6_build_refuses_to_write_over_its_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  name: str) -> None:
    source = tmp_path / name
    pq.write_table(pa.Table.from_pylist([row(id="a"), row(id="b")]), source)
    before = source.read_bytes()
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path))
    assert code == 2
    assert f"{source}: is the input, and this build would replace it" in err and "another --out-dir" in err
    assert source.read_bytes() == before


def test_C1_M13_references_not_a_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for value, kind in ((5, "number"), ({"a": "b"}, "object"), (True, "boolean")):
        source = jsonl(tmp_path / "refs.jsonl", [row(id="a", references=value)])
        code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
        assert code == 2
        assert f"{source}, row 1: references must be a list of strings (weakest first), got {kind}" in err


def test_C2_input_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    code, _, err = build(capsys, str(folder), "--out-dir", str(tmp_path / "out"))
    assert code == 2 and err.strip() == f"writing-rl: error: {folder}: is a directory; give a .jsonl, .json or " \
                                        ".parquet file"


def test_C3_out_dir_is_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    code, _, err = build(capsys, str(EXAMPLES), "--out-dir", str(afile))
    assert code == 2 and f"--out-dir {afile}: is an existing file; give a folder" in err
    assert afile.read_text() == "keep me"


@pytest.mark.parametrize(
    ("raw_id", "message"),
    [
        ("1.0", "'id' must be a string, got number 1.0"),
        ("2.5", "'id' must be a string, got number 2.5"),
        ("1e20", "'id' must be a string, got number 1e+20"),
        ("true", "'id' must be a string, got boolean True"),
        ("[1, 2]", "'id' must be a string, got array [1, 2]"),
        ('{"a": 1}', "'id' must be a string, got object {'a': 1}"),
        ("NaN", "'id' must be a string, got number nan"),
        ("Infinity", "'id' must be a string, got number inf"),
        ('""', "'id' is blank"),
        ('" "', "'id' is blank"),
    ],
)
def test_M11_non_string_and_blank_ids_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   raw_id: str, message: str) -> None:
    source = tmp_path / "ids.jsonl"
    source.write_text('{"id": "ok", "prompt": "p", "references": ["r"]}\n'
                      f'{{"id": {raw_id}, "prompt": "p", "references": ["r"]}}\n')
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2 and f"{source}, row 2: {message}" in err
    assert not (tmp_path / "out").exists()


def test_M11_integer_ids_become_strings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = jsonl(tmp_path / "ints.jsonl", [row(id=7), row(id="x")])
    assert build(capsys, str(source), "--out-dir", str(tmp_path))[0] == 0
    assert ids_of(tmp_path / "train.parquet") == ["7", "x"]


def test_M12_null_id_means_no_id_and_clashes_say_the_id_was_generated(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = jsonl(tmp_path / "null_ids.jsonl", [row(id=None), row(id=None), row(id="0")])
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert (f"{source}, row 3: id '0' is also the id generated from the position of row 1, which has no id; "
            "give every row an id (or none)") in err
    source = jsonl(tmp_path / "mixed.jsonl", [row(id="1"), row()])
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert (f"{source}, row 2: this row has no id, and the id generated from its position, '1', is already the id "
            "of row 1") in err
    source = jsonl(tmp_path / "nulls.jsonl", [row(id=None), row()])
    assert build(capsys, str(source), "--out-dir", str(tmp_path / "ok"))[0] == 0
    assert ids_of(tmp_path / "ok" / "train.parquet") == ["0", "1"]


def test_M14_non_utf8_names_file_line_and_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(b'{"id": "a", "prompt": "p", "references": ["r"]}\n'
                       + '{"id": "b", "prompt": "caf\u00e9", "references": ["r"]}\n'.encode("latin-1"))
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert f"{source}, line 2: not valid UTF-8 (byte 0xe9 at column 27); re-save the file as UTF-8" in err
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(json.dumps(row(id="a")).encode("utf-16"))
    code, _, err = build(capsys, str(utf16), "--out-dir", str(tmp_path / "out"))
    assert code == 2 and f"{utf16}: saved as UTF-16, not UTF-8; re-save the file as UTF-8" in err


def test_M14_lone_surrogate_escape_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "surrogate.jsonl"
    source.write_text('{"id": "a", "prompt": "p\\ud800", "references": ["r"]}\n')
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert f"{source}, line 1: contains a lone surrogate escape (\\ud800)" in err


def test_M15_pretty_printed_json_array_is_read_as_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "array.json"
    source.write_text(json.dumps([row(id="a"), row(id="b")], indent=2))
    code, stdout, _ = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 0 and "2 rows" in stdout
    assert ids_of(tmp_path / "out" / "train.parquet") == ["a", "b"]
    source.write_text(json.dumps([row(id="a"), "oops"], indent=2))
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2 and f"{source}, item 2 of the array: expected a JSON object, got string" in err


def test_M15_json_array_in_jsonl_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "array.jsonl"
    source.write_text(json.dumps([row(id="a"), row(id="b")], indent=2))
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert ("the file looks like a JSON array: save one object per line as .jsonl, or name the file .json "
            "to read it as an array") in err


def test_M16_utf8_bom_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + json.dumps(row(id="a")).encode() + b"\n")
    code, _, err = build(capsys, str(source), "--out-dir", str(tmp_path / "out"))
    assert code == 0, err
    assert ids_of(tmp_path / "out" / "train.parquet") == ["a"]


def test_COSMETIC_upper_case_suffix_and_no_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    upper = jsonl(tmp_path / "upper.JSONL", [row(id="a")])
    assert build(capsys, str(upper), "--out-dir", str(tmp_path / "out"))[0] == 0
    bare = jsonl(tmp_path / "rows", [row(id="a")])
    code, _, err = build(capsys, str(bare), "--out-dir", str(tmp_path / "out"))
    assert code == 2 and "unsupported file without an extension; use .jsonl" in err
