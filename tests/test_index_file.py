"""The index file: format, atomic writes under SIGKILL, the index CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from writing_rl.curriculum.index_file import IndexFileError, parse_index, read_index, render_index, write_index
from writing_rl.curriculum.schedule import PromotionRule
from writing_rl.testing.cli_runner import call_cli
from writing_rl.testing.index_writer import state

KEYS = 2000  # a realistic index: ~30 KB, so a torn write would be visible


def test_crash_at_random_moments_never_tears_the_file(tmp_path: Path) -> None:
    path = tmp_path / "index_crash.json"
    rng = random.Random(1234)
    last_seen = -1
    for attempt in range(100):
        writer = subprocess.Popen([sys.executable, "-m", "writing_rl.testing.index_writer", str(path), str(KEYS),
                                   str(last_seen + 1)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300  # bounds a hang only: a loaded machine starts processes slowly
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        text = path.read_text()
        data = json.loads(text)  # always valid JSON ...
        k = data["step"]
        assert data == state(k, KEYS), f"attempt {attempt}: a torn or mixed state"  # ... and a whole state
        assert text == render_index(data)
        assert k >= last_seen  # never an older state than one already seen
        last_seen = k
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 100  # a killed writer may leave its temporary file, never a broken index


def test_render_is_sorted_one_entry_per_line(tmp_path: Path) -> None:
    path = tmp_path / "index.json"
    write_index(path, {"b": 2, "a": 0, "10": 1})
    assert path.read_text() == '{\n  "10": 1,\n  "a": 0,\n  "b": 2\n}\n'
    assert read_index(path) == {"10": 1, "a": 0, "b": 2}


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not valid JSON"), ("[1, 2]", "expected a JSON object"), ('{"a": "1"}', "key 'a': rung must be an integer"),
    ('{"a": -1}', "key 'a': rung -1 is negative"), ('{"a": true}', "key 'a': rung must be an integer"),
])
def test_parse_errors_name_key_and_reason(text: str, message: str) -> None:
    with pytest.raises(IndexFileError, match=message):
        parse_index(text, "index.json")


def test_promotion_rules() -> None:
    assert PromotionRule.parse("any").promotes(1, 4) and not PromotionRule.parse("any").promotes(0, 4)
    assert PromotionRule.parse("majority").promotes(3, 4) and not PromotionRule.parse("majority").promotes(2, 4)
    assert PromotionRule.parse("win_rate>=0.5").promotes(2, 4)
    with pytest.raises(ValueError, match="win_rate>=X"):
        PromotionRule.parse("most")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return call_cli(*args, cwd=cwd)


def test_index_create_show_diff(tmp_path: Path) -> None:
    rows = [{"data_source": "writing", "prompt": [{"role": "user", "content": "x"}],
             "reward_model": {"ground_truth": {"prompt": "x", "target": ["a", "b"], "id": f"id{i}"}},
             "extra_info": {"index": f"id{i}"}} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    created = cli("index", "create", "--data", "train.parquet", "--experiment", "e1", cwd=tmp_path)
    assert created.returncode == 0 and "3 ids at rung 0" in created.stdout
    index = tmp_path / "running_file" / "index_e1.json"
    assert read_index(index) == {"id0": 0, "id1": 0, "id2": 0}
    again = cli("index", "create", "--data", "train.parquet", "--experiment", "e1", cwd=tmp_path)
    assert "already exists" in again.stdout
    (tmp_path / "running_file" / "index_e1.history.jsonl").write_text(
        json.dumps({"step": 3, "id": "id1", "from": 0, "to": 1, "wins": 2, "n": 4}) + "\n"
        + json.dumps({"step": 4, "id": "id2", "from": 1, "to": 1, "wins": 1, "n": 4, "mastered": True}) + "\n")
    edited = tmp_path / "edited.json"
    write_index(edited, {"id0": 0, "id1": 1, "id3": 0})
    show = cli("index", "show", str(index), cwd=tmp_path)
    assert "3 prompts" in show.stdout and "1 mastered" in show.stdout and "id1: 0 -> 1" in show.stdout
    diff = cli("index", "diff", str(index), str(edited), cwd=tmp_path)
    assert "id1: 0 -> 1" in diff.stdout and "id3: added at 0" in diff.stdout and "id2: removed (was 0)" in diff.stdout
    broken = tmp_path / "broken.json"
    broken.write_text('{"id0": "x"}')
    result = cli("index", "show", str(broken), cwd=tmp_path)
    assert result.returncode == 2 and "key 'id0': rung must be an integer" in result.stderr


def test_M26_an_index_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Windows editors save UTF-8 with a BOM; data files accept it, and so do the index, `index set` and training."""
    path = tmp_path / "index_x.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{\n  "a": 1,\n  "b": 0\n}\n')
    assert parse_index(path.read_text(encoding="utf-8"), path) == {"a": 1, "b": 0}
    result = call_cli("index", "set", "b=1", "--file", str(path))
    assert result.returncode == 0, result.stderr


def test_M8_an_existing_index_with_rungs_beyond_the_new_ladders_is_warned(tmp_path: Path) -> None:
    """A selection rebuilt with one candidate instead of three: the kept index names the ids now beyond their
    ladder, with the two ways out (it used to say only "left unchanged to continue training")."""
    from writing_rl.curriculum.index_creation import create_index

    rows = [{"data_source": "writing", "prompt": [{"role": "user", "content": "x"}],
             "reward_model": {"ground_truth": {"prompt": "x", "target": ["only one"], "id": f"s{i}"}},
             "extra_info": {"index": f"s{i}"}} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    write_index(tmp_path / "index_exp1.json", {"s0": 2, "s1": 1, "s2": 0})
    _, note = create_index([tmp_path / "train.parquet"], "exp1", tmp_path)
    assert "2 id(s) are on a rung beyond their ladder" in note and "s0=2 (valid: 0..0)" in note
    assert "index create --force" in note
