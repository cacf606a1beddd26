"""Nothing lost: hand edits and `index set` edits against a live Curriculum, on real files, with a second
process editing while training writes (findings A1, A2, A3, M20, C10; mastered once)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from writing_rl.curriculum.edit_queue import EditQueue, QueuedEdit
from writing_rl.curriculum.index_file import (
    append_history,
    history_path,
    read_history,
    read_index,
    render_index,
    write_index,
)
from writing_rl.curriculum.index_text import CHUNK_LINES, IndexText
from writing_rl.curriculum.schedule import Curriculum, PromotionRule
from writing_rl.curriculum.swap import read_quietly

ANY = PromotionRule.parse("any")


def curriculum(tmp_path: Path, ids: tuple[str, ...] = ("a", "b", "c"), ladder: int = 3,
               **kwargs: float) -> Curriculum:
    path = tmp_path / "index_x.json"
    if not path.exists():
        write_index(path, dict.fromkeys(ids, 0))
    return Curriculum(path, dict.fromkeys(ids, ladder), ANY, **kwargs)


def promote(c: Curriculum, key: str) -> None:
    assert c.record_group(key, c.rung(key), 1, 1, step=1) is not None


def save_buffer(path: Path, buffer: str, **changes: int) -> None:
    """An editor saving its buffer (loaded earlier) with some values changed: atomic rename, like most editors."""
    state = json.loads(buffer)
    state.update(changes)
    tmp = path.with_name("editor.tmp")
    tmp.write_text(render_index(state))
    tmp.replace(path)


def test_A1_edit_during_judgements_survives_the_group_save(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    assert c.pick_up_edits() is None
    save_buffer(c.path, c.path.read_text(), c=2)  # lands while a group is being judged
    promote(c, "a")
    c.save(force=True)
    assert read_index(c.path) == {"a": 1, "b": 0, "c": 2}
    assert c.rung("c") == 2 and c.edits_adopted == 1


def test_A1_edit_after_the_last_judgement_survives_the_step_end_write(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    promote(c, "a")
    c.save()  # a group's coalesced background write
    c.save(force=True)
    save_buffer(c.path, c.path.read_text(), b=2)  # between the step's last judgement and on_step_end
    c.save(force=True)  # the coordinator's step_metrics / checkpoint write
    assert read_index(c.path) == {"a": 1, "b": 2, "c": 0} and c.edits_adopted == 1


def test_A2_stale_editor_buffer_keeps_training_promotions_until_forced(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    c = curriculum(tmp_path)
    buffer = c.path.read_text()  # the person opens the file: a=0
    promote(c, "a")
    c.save(force=True)  # training writes a=1; nobody reads that version
    save_buffer(c.path, buffer, b=2)  # the buffer still says a=0
    with caplog.at_level(logging.WARNING):
        problem = c.pick_up_edits()
        c.save(force=True)
    assert read_index(c.path) == {"a": 1, "b": 2, "c": 0}
    assert c.edits_adopted == 1 and c.edits_stale_kept == 1
    assert problem is not None and "kept a=1" in problem and "index set a=0 --force" in problem
    assert "index set a=0 --force" in caplog.text
    assert [(h["id"], h["from"], h["to"]) for h in read_history(c.history_path)] == [("a", 0, 1)]
    EditQueue(c.path).append([QueuedEdit("a", 0, force=True, seen=1)])  # what `index set a=0 --force` queues
    c.save(force=True)
    assert read_index(c.path)["a"] == 0 and c.rung("a") == 0


def test_A2_a_demotion_after_reading_the_promoted_file_is_adopted(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    promote(c, "a")
    c.save(force=True)
    buffer = c.path.read_text()  # the person loads the version that shows a=1
    save_buffer(c.path, buffer, a=0)
    assert c.pick_up_edits() is None
    c.save(force=True)
    assert read_index(c.path)["a"] == 0 and c.edits_stale_kept == 0


def test_A3_rejected_copies_are_never_overwritten(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    bad = ['{"a": FIRST}', '{"a": SECOND}', '{"a": -1}', '{"a": 1.0}', '{"a": "2"}', '{"zz": 1}', '{"a": 7}']
    problems = []
    for number, text in enumerate(bad):  # all within a second or so, saved in place or by rename
        if number % 2:
            c.path.write_text(text)
        else:
            (tmp_path / "editor.tmp").write_text(text)
            (tmp_path / "editor.tmp").replace(c.path)
        c.save(force=True)  # the next write examines it
        problems.append(c.pick_up_edits())
    kept = sorted(c.path.parent.glob(c.path.name + ".rejected-*"))
    assert sorted(p.read_text() for p in kept) == sorted(bad)
    for problem, text in zip(problems, bad, strict=True):
        named = Path(problem.rsplit("the edit is kept in ", 1)[1])
        assert named.read_text() == text
    assert read_index(c.path) == {"a": 0, "b": 0, "c": 0} and c.edits_rejected == len(bad)


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_A3_a_deleted_or_emptied_file_is_reported_as_such(tmp_path: Path, how: str) -> None:
    c = curriculum(tmp_path)
    promote(c, "b")
    c.save(force=True)
    if how == "deleted":
        c.path.unlink()
    else:
        c.path.write_text("")
    problem = c.pick_up_edits()
    c.save(force=True)
    assert problem is not None and f"was {how}" in problem and "kept in" not in problem
    assert not list(c.path.parent.glob("*.rejected-*"))
    assert read_index(c.path) == {"a": 0, "b": 1, "c": 0}


def test_M20_removing_an_id_is_reported_and_ignored(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    c.path.write_text('{"a": 1, "b": 0}')
    problem = c.pick_up_edits()
    c.save(force=True)
    assert problem is not None and "removal of id(s) c ignored" in problem and "set it to 0 instead" in problem
    assert read_index(c.path) == {"a": 1, "b": 0, "c": 0} and c.edits_adopted == 1


def test_queued_edits_apply_before_the_next_write_and_stale_ones_are_kept(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    queue = EditQueue(c.path)
    queue.append([QueuedEdit("b", 2, seen=0), QueuedEdit("nope", 1), QueuedEdit("c", 9)])
    promote(c, "a")
    problem = c.pick_up_edits()  # before the next judgement
    assert c.rung("b") == 2 and problem is not None
    assert "'nope'=1 rejected: not an id" in problem and "'c'=9 rejected: beyond its 3" in problem
    assert queue.size() > 0  # emptied only once the index holds the edits
    c.save(force=True)
    assert read_index(c.path) == {"a": 1, "b": 2, "c": 0} and queue.size() == 0
    queue.append([QueuedEdit("a", 0, seen=0)])  # queued when a was 0; training has moved it to 1 since
    c.save(force=True)
    assert read_index(c.path)["a"] == 1 and c.edits_stale_kept == 1


def test_edits_queued_while_no_training_runs_apply_at_start(tmp_path: Path) -> None:
    path = tmp_path / "index_x.json"
    write_index(path, {"a": 0, "b": 1})
    EditQueue(path).append([QueuedEdit("a", 2, seen=0)])
    Curriculum(path, {"a": 3, "b": 3, "new": 2}, ANY)
    assert read_index(path) == {"a": 2, "b": 1, "new": 0} and EditQueue(path).size() == 0


EDITOR = textwrap.dedent("""
    import json, os, random, sys, time
    from writing_rl.curriculum.edit_queue import EditQueue, QueuedEdit
    from writing_rl.curriculum.index_file import render_index
    path, count = sys.argv[1], int(sys.argv[2])
    rng = random.Random(7)
    for i in range(count):
        with open(path, encoding="utf-8") as handle:   # load the file into the "editor"
            state = json.load(handle)
        time.sleep(rng.uniform(0, 0.004))               # think
        state[f"e{i}"] = 2
        tmp = path + ".editor"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(render_index(state))
        os.replace(tmp, path)                           # save
        EditQueue(__import__("pathlib").Path(path)).append([QueuedEdit(f"q{i}", 1, seen=0)])
        time.sleep(rng.uniform(0, 0.004))
""")


def test_A1_A2_a_second_process_editing_while_training_writes_loses_nothing(tmp_path: Path) -> None:
    """A person's process saves the whole file (each save sets one more e<i>) and queues `index set` edits,
    while training promotes t<j> and writes in the background and at step ends: every edit and every
    promotion must be in the final file."""
    edits, promotions = 150, 400
    ids = tuple(f"e{i}" for i in range(edits)) + tuple(f"q{i}" for i in range(edits)) + tuple(
        f"t{j}" for j in range(promotions))
    c = curriculum(tmp_path, ids, flush_interval_s=0.002)
    editor = subprocess.Popen([sys.executable, "-c", EDITOR, str(c.path), str(edits)])
    j = 0
    while editor.poll() is None or j < promotions:
        c.pick_up_edits()
        if j < promotions:
            promote(c, f"t{j}")
            j += 1
        c.save(force=j % 50 == 0)
    assert editor.wait() == 0
    c.save(force=True)
    state = read_index(c.path)
    assert {k for k, v in state.items() if v == 2} == {f"e{i}" for i in range(edits)}
    assert all(state[f"q{i}"] == 1 for i in range(edits))
    assert all(state[f"t{j}"] == 1 for j in range(promotions))  # no stale save reverted a promotion
    assert c.edits_rejected == 0
    assert len(read_history(c.history_path)) == promotions


def test_mastered_prompt_adds_one_history_line_only(tmp_path: Path) -> None:
    c = curriculum(tmp_path, ("a",), ladder=1)
    records = [c.record_group("a", 0, 1, 1, step) for step in range(1, 6)]
    c.save(force=True)
    assert records[0] is not None and records[0]["mastered"] and records[1:] == [None] * 4
    assert len(read_history(c.history_path)) == 1
    assert Curriculum(c.path, {"a": 1}, ANY).record_group("a", 0, 1, 1, 9) is None  # also after a restart


def test_C10_bad_history_lines_never_stop_the_curriculum(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "index_x.json"
    write_index(path, {"a": 0, "b": 0})
    good = json.dumps({"step": 1, "id": "a", "from": 0, "to": 0, "wins": 1, "n": 1, "mastered": True})
    history_path(path).write_text(f'{good}\n[1, 2]\n{{"id": "b"}}\n{{"step": 2, "id": "b", "fr')
    with caplog.at_level(logging.WARNING):
        c = Curriculum(path, {"a": 1, "b": 2}, ANY)
    assert c.mastered == {"a"}
    assert "line 2: expected a JSON object" in caplog.text and "line 3: missing key(s)" in caplog.text
    assert "line 4: incomplete last line" in caplog.text
    promote(c, "b")
    c.save(force=True)  # the append closes the torn line first: the new record stays whole
    assert [r["id"] for r in read_history(c.history_path)] == ["a", "b"]


def test_index_text_renders_like_render_index(tmp_path: Path) -> None:
    state = {f"k{i}": i % 5 for i in range(CHUNK_LINES + 17)} | {"🦄": 1, "": 0, "a\nb": 2}
    text = IndexText(state)
    assert "".join(text.chunks()) == render_index(state)
    text.update({"k3": 4, "🦄": 0})
    assert "".join(text.chunks()) == render_index({**state, "k3": 4, "🦄": 0})
    assert "".join(IndexText({}).chunks()) == render_index({}) == "{}\n"


def test_background_writes_reach_the_file_and_a_forced_save_is_exact(tmp_path: Path) -> None:
    c = curriculum(tmp_path, tuple(f"p{i}" for i in range(2000)), flush_interval_s=0.01)
    for i in range(0, 2000, 2):
        promote(c, f"p{i}")
        c.save()
    c.save(force=True)
    assert read_index(c.path) == {f"p{i}": 1 - i % 2 for i in range(2000)}
    assert json.loads(read_quietly(c.path)) == c.state
    append_history(tmp_path / "other.jsonl", [])  # nothing to append: no file
    assert not (tmp_path / "other.jsonl").exists()


def test_D4_an_adopted_hand_edit_survives_a_stale_buffer_like_a_promotion(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """B opens the file (a=0); A saves a=2, training adopts it and writes; B saves its old buffer with only b
    changed. A's edit stays (it used to be reverted, logged as an adopted change), and the log says who moved it."""
    c = curriculum(tmp_path)
    buffer_b = c.path.read_text()
    save_buffer(c.path, c.path.read_text(), a=2)  # person A
    assert c.pick_up_edits() is None
    c.save(force=True)
    assert c.rung("a") == 2  # (nobody reads the written file: reading it would count as loading the new version)
    save_buffer(c.path, buffer_b, b=2)  # person B's stale buffer still says a=0
    with caplog.at_level(logging.WARNING):
        problem = c.pick_up_edits()
        c.save(force=True)
    assert read_index(c.path) == {"a": 2, "b": 2, "c": 0}
    assert problem is not None and "kept a=2: a hand edit of the file moved it from 0" in problem
    assert "index set a=0 --force" in problem


def test_D3_a_second_index_set_of_an_id_replaces_the_queued_one(tmp_path: Path) -> None:
    """Changing your mind before training picks the queue up: the later edit wins (it used to be dropped, and the
    log blamed training)."""
    from writing_rl.testing.cli_runner import call_cli

    c = curriculum(tmp_path)
    first = call_cli("index", "set", "a=1", "--file", str(c.path))
    second = call_cli("index", "set", "a=0", "--file", str(c.path))
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert "a 1 -> 0 (replaces the queued 1)" in second.stdout
    assert c.pick_up_edits() is None
    c.save(force=True)
    assert read_index(c.path)["a"] == 0 and c.edits_stale_kept == 0


def test_D3_a_stale_queued_edit_names_who_moved_the_rung(tmp_path: Path) -> None:
    c = curriculum(tmp_path)
    EditQueue(c.path).append([QueuedEdit("a", 1, seen=0)])  # queued when a was 0
    save_buffer(c.path, c.path.read_text(), a=2)  # a hand edit lands first
    problem = c.pick_up_edits()
    assert problem is not None and "a hand edit of the file moved a to 2" in problem
    assert "training has moved" not in problem and c.rung("a") == 2
