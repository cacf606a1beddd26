"""The curriculum: which rung each prompt is on, when it moves up, and keeping the index file in step
with both the training and a person editing it. Plain Python; training is the single writer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import Timeout

from writing_rl.curriculum.edit_queue import EditQueue
from writing_rl.curriculum.edits import EditDecision, decide, force_command, keep_rejected, printable_id, shown
from writing_rl.curriculum.flusher import CoalescingWriter
from writing_rl.curriculum.index_file import (
    IndexFileError,
    append_history,
    history_path,
    parse_index,
    read_history,
)
from writing_rl.curriculum.index_text import IndexText
from writing_rl.curriculum.swap import FileId, Written, file_id, read_quietly, write_version

logger = logging.getLogger(__name__)
SETTLE_TRIES = 5


@dataclass(frozen=True)
class PromotionRule:
    """`any` (one win moves the prompt up), `majority` (more than half), or `win_rate>=X`."""

    kind: str = "any"
    threshold: float = 0.5

    @classmethod
    def parse(cls, text: str) -> PromotionRule:
        text = text.strip()
        if text in ("any", "majority"):
            return cls(text)
        if text.startswith("win_rate>="):
            try:
                value = float(text.removeprefix("win_rate>="))
            except ValueError:
                value = -1.0
            if 0.0 < value <= 1.0:
                return cls("win_rate", value)
        raise ValueError(f"promotion rule {text!r}: use 'any', 'majority' or 'win_rate>=X' with 0 < X <= 1")

    def promotes(self, wins: int, total: int) -> bool:
        if total <= 0:
            return False
        if self.kind == "any":
            return wins >= 1
        if self.kind == "majority":
            return wins * 2 > total
        return wins / total >= self.threshold


def validate_state(state: Mapping[str, int], ladders: Mapping[str, int], source: str | Path) -> None:
    """Every key a known id, every rung on its ladder; the first problem names the key."""
    for key, rung in state.items():
        if key not in ladders:
            raise IndexFileError(f"{source}: key {key!r} is not an id of the training data")
        if rung >= ladders[key]:
            raise IndexFileError(f"{source}: key {key!r}: rung {rung} is beyond its {ladders[key]} reference(s) "
                                 f"(valid: 0..{ladders[key] - 1})")


class Curriculum:
    """Which rung each prompt is on, and the index file kept in step with training and with people.

    Judgements call `rung`, `record_group`, `pick_up_edits` and `save()` on the caller's thread (the
    coordinator's event loop); none of them waits for the file. Writes run in one background thread,
    coalesced to one per `flush_interval_s`, or synchronously with `save(force=True)`. Every write first
    examines what a person changed (the file, the `index set` queue) and never discards a version of
    the file it has not examined (see `swap.py`). `_lock` guards the in-memory state and is held for
    microseconds; `_io` lets one examination-and-write run at a time.
    """

    def __init__(self, path: str | Path, ladders: Mapping[str, int], rule: PromotionRule, *,
                 flush_interval_s: float = 1.0):
        self.path = Path(path)
        self.history_path = history_path(self.path)
        self.queue = EditQueue(self.path)
        self.ladders = dict(ladders)
        self.rule = rule
        if self.path.is_dir():
            raise IndexFileError(f"{self.path} is a directory, not an index file")
        try:
            text = read_quietly(self.path)
        except FileNotFoundError as exc:
            raise IndexFileError(f"{self.path}: not found; create it with `writing-rl index create`") from exc
        self._examined: FileId | None = file_id(self.path)
        loaded = parse_index(text, self.path)
        validate_state(loaded, self.ladders, self.path)
        self.state = {**dict.fromkeys(self.ladders, 0), **loaded}
        self._text = IndexText(self.state)  # what the file holds once training has written it
        self._current: Written | None = None
        self._version = 0
        self._last_read_version = 0
        self._changed: dict[str, int] = {}
        self._pending: list[dict[str, Any]] = []
        self._moves: dict[str, dict[int, int]] = {}
        self._moved_by: dict[str, str] = {}
        """Who made each id's last move, for the messages: a promotion, an `index set` edit, a hand edit."""
        self._problems: list[str] = []
        self._queue_offset = 0
        self._closed = False
        self.mastered = {r["id"] for r in read_history(self.history_path) if r.get("mastered")}
        self.promotions_total = 0
        self.edits_adopted = 0
        self.edits_rejected = 0
        self.edits_stale_kept = 0
        self._lock = threading.Lock()
        self._io = threading.Lock()
        self._writer = CoalescingWriter(self._background_write, flush_interval_s, f"index-writer:{self.path.name}")
        if len(loaded) < len(self.state) or self.queue.size():
            self.save(force=True)  # ids new in the data start at rung 0; edits queued while no training ran

    def rung(self, prompt_id: str) -> int:
        ladder = self.ladders.get(prompt_id, 1)
        return min(self.state.get(prompt_id, 0), ladder - 1)

    def record_group(self, prompt_id: str, rung_used: int, wins: int, total: int, step: int) -> dict | None:
        """Apply the promotion rule to one finished group; at most one rung, capped at the top. A prompt
        that beats its top reference is recorded as mastered once."""
        if not self.rule.promotes(wins, total):
            return None
        with self._lock:
            if self.rung(prompt_id) != rung_used:  # moved meanwhile (a hand edit): that decision stands
                return None
            top = self.ladders.get(prompt_id, 1) - 1
            if rung_used >= top and prompt_id in self.mastered:
                return None
            record = {"step": step, "id": prompt_id, "from": rung_used, "to": min(rung_used + 1, top),
                      "wins": wins, "n": total, "time": round(time.time(), 3)}
            if rung_used >= top:
                record["mastered"] = True
                self.mastered.add(prompt_id)
            else:
                self.state[prompt_id] = self._changed[prompt_id] = rung_used + 1
                self._moves.setdefault(prompt_id, {})[rung_used] = self._version + 1
                self._moved_by[prompt_id] = "a training promotion"
                self.promotions_total += 1
            self._pending.append(record)
        return record

    def pick_up_edits(self) -> str | None:
        """Before a judgement: adopt what a person changed since the last look (the file, the `index set`
        queue). Returns the problems found since the last call (rejected edits, stale values kept,
        removals ignored), or None. While a write is in progress this returns at once: that write
        examines the edit first."""
        if (file_id(self.path) in self._known_versions() and self.queue.size() <= self._queue_offset) \
                or not self._io.acquire(blocking=False):
            return self._take_problems()
        try:
            self._examine_live_file()
            with suppress(Timeout), self.queue.lock(timeout=0):
                self._apply_queue()
        finally:
            self._io.release()
        if self._changed or file_id(self.path) not in self._known_versions(written_only=True):
            self._writer.request()
        return self._take_problems()

    def save(self, force: bool = False) -> None:
        """Write the index and append the pending history lines: soon (coalesced, in the background), or
        with `force` now, returning when both files on disk are exact (step end, checkpoints)."""
        if self._closed:
            logger.warning("curriculum %s is closed (its index was restored); not written", self.path)
            return
        if not force:
            self._writer.request()
            return
        self._writer.withdraw()
        with self._io:
            self._write_cycle()

    def close(self) -> None:
        """Write what is pending and stop writing for good (before the file is replaced by a restore)."""
        self.save(force=True)
        self._closed = True
        self._writer.close()
        with self._io:
            if self._current is not None:
                self._current.close()
                self._current = None

    def mean_rung(self) -> float:
        return sum(self.state.values()) / len(self.state) if self.state else 0.0

    def _background_write(self) -> None:
        with self._io:
            if not self._closed:
                self._write_cycle()

    def _known_versions(self, written_only: bool = False) -> tuple[FileId | None, ...]:
        ours = self._current.id if self._current is not None else None
        return (ours,) if written_only else (ours, self._examined)

    def _write_cycle(self) -> None:
        """Examine edits, write the index if it is not exact, append history, empty the consumed queue."""
        with self.queue.lock():
            self._examine_live_file()
            self._apply_queue()
            while True:
                exact = file_id(self.path) in self._known_versions(written_only=True)
                with self._lock:
                    changes, self._changed = self._changed, {}
                    records, self._pending = self._pending, []
                    if changes or not exact:
                        self._version += 1
                try:
                    self._text.update(changes)
                    displaced = self._write() if changes or not exact else None
                    append_history(self.history_path, records)
                except BaseException:
                    with self._lock:  # nothing taken is lost: the next write retries
                        self._changed = {**changes, **self._changed}
                        self._pending = records + self._pending
                    raise
                if displaced is None:
                    break
            if self._queue_offset:
                self.queue.clear()
                self._queue_offset = 0

    def _write(self) -> Path | None:
        """Put the current text in place; returns the displaced file when it is a version nobody
        examined yet (a person saved between our last look and the swap), after examining it."""
        self._note_reads()
        previous = self._known_versions()
        written, displaced = write_version(self.path, self._text.chunks(), self._version)
        if self._current is not None:
            self._current.close()
        self._current = written
        if displaced is None:
            return None
        if file_id(displaced) in previous:
            displaced.unlink()
            return None
        self._examine(displaced)
        displaced.unlink()
        return displaced

    def _note_reads(self) -> None:
        if self._current is not None and self._current.was_read():
            self._last_read_version = max(self._last_read_version, self._current.version)

    def _examine_live_file(self) -> None:
        on_disk = file_id(self.path)
        if on_disk not in self._known_versions():
            self._examine(self.path)

    def _examine(self, source: Path) -> None:
        """A person's version of the file: adopt it key by key, keep training's stale values, or reject
        it whole, and say which."""
        self._note_reads()
        try:
            text = self._read_settled(source)
        except FileNotFoundError:
            text = None
        except UnicodeDecodeError as exc:
            return self._reject(f"{self.path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                                source.read_bytes().decode("utf-8", errors="replace"))
        if not text or not text.strip():
            with self._lock:
                self.edits_rejected += 1
            what = "deleted" if text is None else "emptied"
            return self._report(f"{self.path}: the index file was {what}; it is written again from training's "
                                "state (there was no edit to keep)")
        try:
            edited = parse_index(text, self.path)
            validate_state(edited, self.ladders, self.path)
        except IndexFileError as exc:
            return self._reject(str(exc), text)
        # outside the lock (a million keys take a while): promotions meanwhile only add keys to `_moves`
        decision = decide(edited, self._text.values, self.state, self._moves, self._last_read_version)
        with self._lock:
            for key, rung in decision.adopted.items():
                # an adopted hand edit is protected like a promotion: a stale buffer showing the old value keeps it
                self._moves[key] = {self.state[key]: self._version + 1}
                self._moved_by[key] = "a hand edit of the file"
                self.state[key] = self._changed[key] = rung
            self.edits_adopted += bool(decision.adopted)
            self.edits_stale_kept += len(decision.stale)
        self._log_decision(decision)

    def _read_settled(self, source: Path) -> str:
        """The text of a version that did not change while it was read (an editor writing in place
        truncates first: reading in between would see an empty or half file)."""
        for _ in range(SETTLE_TRIES):
            before = file_id(source)
            text = read_quietly(source)
            if file_id(source) == before:
                break
        if source == self.path:
            self._examined = before
        return text

    def _reject(self, reason: str, text: str) -> None:
        kept = keep_rejected(self.path, text)
        with self._lock:
            self.edits_rejected += 1
        self._report(f"index edit rejected: {reason}; training continues on the last good state; "
                     f"the edit is kept in {kept}")

    def _log_decision(self, decision: EditDecision) -> None:
        if decision.adopted:
            logger.warning("index edited by hand: adopted %d change(s): %s", len(decision.adopted),
                           ", ".join(f"{printable_id(k)}={v}" for k, v in sorted(decision.adopted.items())[:10]))
        for key, (edited, kept) in sorted(decision.stale.items()):
            who = self._moved_by.get(key, "training")
            self._report(f"index edit: kept {printable_id(key)}={kept}: {who} moved it from {edited} after the "
                         f"version your editor could have loaded, so {edited} looks like a stale copy; to set it "
                         f"anyway: {force_command(key, edited, self.path)}", logging.WARNING)
        if decision.removed:
            self._report(f"index edit: removal of id(s) {shown(decision.removed)} ignored: ids of the training data "
                         "stay in the index; set it to 0 instead", logging.WARNING)

    def _apply_queue(self) -> None:
        """Apply `index set` edits queued since the last look (the caller holds the queue's lock)."""
        read = self.queue.read(self._queue_offset)
        self._queue_offset = read.end
        for problem in read.problems:
            self._report(problem)
        for edit in read.edits:
            ladder = self.ladders.get(edit.id)
            if ladder is None or edit.rung >= ladder:
                with self._lock:
                    self.edits_rejected += 1
                why = "not an id of the training data" if ladder is None else \
                    f"beyond its {ladder} reference(s) (valid: 0..{ladder - 1})"
                self._report(f"queued index edit {edit.describe()} rejected: {why}")
                continue
            with self._lock:
                current = self.state[edit.id]
                # stale: lower than now, and now is not what the person knew (someone else moved it since)
                stale = edit.rung < current and current != edit.seen and not edit.force
                who = self._moved_by.get(edit.id, "training")
                if stale:
                    self.edits_stale_kept += 1
                elif edit.rung != current:
                    self.state[edit.id] = self._changed[edit.id] = edit.rung
                    self._moves.setdefault(edit.id, {})[current] = self._version + 1
                    self._moved_by[edit.id] = "an `index set` edit"
                    self.edits_adopted += 1
            if stale:
                self._report(f"queued index edit {edit.describe()} not applied: {who} moved "
                             f"{printable_id(edit.id)} to {current}, and the index showed {edit.seen} when this edit "
                             f"was queued; to set it anyway: {force_command(edit.id, edit.rung, self.path)}",
                             logging.WARNING)
            else:
                logger.warning("index edit queued by `index set`: %s=%d (was %d)", printable_id(edit.id),
                               edit.rung, current)

    def _report(self, problem: str, level: int = logging.ERROR) -> None:
        logger.log(level, "%s", problem)
        with self._lock:
            self._problems.append(problem)

    def _take_problems(self) -> str | None:
        if not self._problems:
            return None
        with self._lock:
            problems, self._problems = self._problems, []
        return "; ".join(problems)
