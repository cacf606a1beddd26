"""`writing-rl index set|show|create|diff` for people: queued edits, bad history lines, odd ids (findings C7, C8,
M7, and the cosmetic ones: emoji ids escaped, odd ids in show/diff)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from writing_rl.curriculum.edit_queue import EditQueue
from writing_rl.curriculum.index_file import history_path, read_index, write_index
from writing_rl.curriculum.schedule import Curriculum, PromotionRule
from writing_rl.testing.cli_runner import call_cli


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return call_cli(*args, cwd=cwd)


def train_parquet(tmp_path: Path, ids: list[str], ladder: int = 3) -> Path:
    rows = [{"data_source": "writing", "prompt": [{"role": "user", "content": "x"}],
             "reward_model": {"ground_truth": {"prompt": "x", "target": [f"r{j}" for j in range(ladder)], "id": i}},
             "extra_info": {"index": i}} for i in ids]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_index_set_queues_shows_pending_and_training_applies_it(tmp_path: Path) -> None:
    data = train_parquet(tmp_path, ["p0", "p1", "p2"])
    index = tmp_path / "running_file" / "index_e1.json"
    write_index(index, {"p0": 1, "p1": 0, "p2": 0})
    queued = cli("index", "set", "p1=2", "p2=1", "--experiment", "e1", "--data", str(data), cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    assert "queued 2 edit(s)" in queued.stdout and "before its next judgement" in queued.stdout
    assert read_index(index) == {"p0": 1, "p1": 0, "p2": 0}  # the file itself is training's to write
    show = cli("index", "show", str(index), cwd=tmp_path)
    assert "2 edit(s) queued by `index set`, not applied yet" in show.stdout and "p1: 0 -> 2" in show.stdout
    demote = cli("index", "set", "p0=0", "--file", str(index), cwd=tmp_path)
    assert demote.returncode == 2 and "p0: 1 -> 0 is a demotion; add --force" in demote.stderr
    for bad, message in [("p9=1", "not an id of the training data"), ("p1=3", "beyond its 3 reference(s)"),
                         ("p1=x", "non-negative integer"), ("p1", "expected ID=RUNG")]:
        result = cli("index", "set", bad, "--file", str(index), "--data", str(data), cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, (bad, result.stderr)
    assert len(EditQueue(index).read().edits) == 2  # refused commands queued nothing
    forced = cli("index", "set", "p0=0", "--force", "--file", str(index), cwd=tmp_path)
    assert forced.returncode == 0
    curriculum = Curriculum(index, {"p0": 3, "p1": 3, "p2": 3}, PromotionRule.parse("any"))  # training starts
    assert read_index(index) == {"p0": 0, "p1": 2, "p2": 1} and curriculum.edits_adopted == 3
    assert "queued" not in cli("index", "show", str(index), cwd=tmp_path).stdout


def test_C7_index_show_of_a_directory_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    write_index(tmp_path / "runs" / "index_e1.json", {"a": 0})
    result = cli("index", "show", "runs", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "writing-rl: error: runs is a directory; give the index file (index_<experiment>.json); "
        "index files in it: index_e1.json"]


def test_C8_C10_bad_history_lines_are_reported_and_skipped_by_index_show(tmp_path: Path) -> None:
    index = tmp_path / "index_h.json"
    write_index(index, {"a": 1, "b": 0})
    good = json.dumps({"step": 3, "id": "a", "from": 0, "to": 1, "wins": 2, "n": 4})
    history_path(index).write_text(f'{good}\n{{"id": "a"}}\n[1, 2]\n{good}\n{{"step": 4, "id": "b", "fr')
    result = cli("index", "show", str(index), cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert f"{history_path(index)}, line 2: missing key(s) ['step', 'from', 'to']; skipped" in result.stderr
    assert f"{history_path(index)}, line 3: expected a JSON object, got list; skipped" in result.stderr
    assert "line 5: incomplete last line (a crash while appending?); skipped" in result.stderr
    assert "last 2 promotion(s) (of 2)" in result.stdout


def test_M7_index_create_on_an_existing_index_adds_the_missing_ids(tmp_path: Path) -> None:
    data = train_parquet(tmp_path, ["w1", "w2", "w3", "w5"])
    index = tmp_path / "running_file" / "index_e1.json"
    write_index(index, {"w1": 2, "w2": 1, "w3": 0})
    result = cli("index", "create", "--data", str(data), "--experiment", "e1", cwd=tmp_path)
    assert result.returncode == 0
    assert "kept every rung and added 1 id(s) of the data at rung 0: w5" in result.stdout
    assert read_index(index) == {"w1": 2, "w2": 1, "w3": 0, "w5": 0}
    again = cli("index", "create", "--data", str(data), "--experiment", "e1", cwd=tmp_path)
    assert "left unchanged" in again.stdout
    script = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "scripts" / "create_index_file.py"),
                             "--data", str(data), "--experiment", "e1"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert "left unchanged" in script.stdout


def test_emoji_ids_are_written_unescaped_and_odd_ids_are_shown_with_repr(tmp_path: Path) -> None:
    index = tmp_path / "index_u.json"
    write_index(index, {"🦄": 1, "": 0, "a\nb": 2, "plain": 0})
    assert '"🦄": 1' in index.read_text(encoding="utf-8")
    grep = subprocess.run(["grep", "-c", "🦄", str(index)], capture_output=True, text=True)
    assert grep.stdout.strip() == "1"
    history_path(index).write_text(json.dumps({"step": 1, "id": "a\nb", "from": 1, "to": 2, "wins": 1, "n": 1})
                                   + "\n")
    show = cli("index", "show", str(index), cwd=tmp_path)
    assert "'a\\nb': 1 -> 2" in show.stdout
    other = tmp_path / "other.json"
    write_index(other, {"🦄": 2, "a\nb": 2, "plain": 0, " x": 1})
    diff = cli("index", "diff", str(index), str(other), cwd=tmp_path)
    lines = diff.stdout.splitlines()
    assert "🦄: 1 -> 2" in lines and "' x': added at 1" in lines and "'': removed (was 0)" in lines
    assert all(line.count("'") != 1 for line in lines)  # no id split across lines


def test_an_edit_queued_after_a_torn_last_line_is_applied(tmp_path: Path) -> None:
    """A queue whose last line was cut short (a killed write, a hand edit without a final newline): the new edit
    starts on a line of its own, so training reads it; the torn line alone is reported and skipped."""
    from writing_rl.curriculum.edit_queue import EditQueue

    data = train_parquet(tmp_path, ["q0", "q1", "q2"])
    index = tmp_path / "running_file" / "index_ex.json"
    assert cli("index", "create", "--data", str(data), "--experiment", "ex", cwd=tmp_path).returncode == 0
    queue = EditQueue(index)
    queue.path.write_text('{"id": "q1", "rung": 2, "force": false, "seen": 0}\n{"id": "q2", "ru')
    assert cli("index", "set", "q2=2", "--file", str(index), cwd=tmp_path).returncode == 0
    read = queue.read()
    assert [(e.id, e.rung) for e in read.edits] == [("q1", 2), ("q2", 2)]
    assert len(read.problems) == 1 and "line 2" in read.problems[0]


def test_a_closed_output_pipe_ends_quietly_after_the_work_is_done(tmp_path: Path) -> None:
    """`writing-rl index set ... | true`: no traceback, the shell's SIGPIPE status, and the edit is queued once (a
    script that retried on the old status 1 queued it twice)."""
    from writing_rl.cli.main import OUTPUT_CLOSED
    from writing_rl.curriculum.edit_queue import EditQueue

    data = train_parquet(tmp_path, ["p0", "p1"])
    index = tmp_path / "running_file" / "index_e1.json"
    assert cli("index", "create", "--data", str(data), "--experiment", "e1", cwd=tmp_path).returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "writing_rl.cli", "index", "set", "p1=1", "--file", str(index)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command prints a word
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == OUTPUT_CLOSED
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert [(e.id, e.rung) for e in EditQueue(index).read().edits] == [("p1", 1)]
