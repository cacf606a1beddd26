"""`index_<experiment>.edits.jsonl`: edits queued by `writing-rl index set`, applied by training.

A person appends under a file lock; the training's curriculum reads the queue under the same lock
immediately before each index write, writes the index with the edits in it, and only then empties
the queue, so a crash at any moment loses no queued edit.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from writing_rl.curriculum.index_file import append_lines


@dataclass(frozen=True)
class QueuedEdit:
    """Set `id` to `rung`. `seen` is the rung the person knew when queuing: the index's, or the rung of their own
    edit still in the queue (`replaces`); `force` allows a demotion and overrides moves made since by others."""

    id: str
    rung: int
    force: bool = False
    seen: int | None = None
    time: float = 0.0
    replaces: int | None = None

    def describe(self) -> str:
        return f"{self.id!r}={self.rung}" + (" (--force)" if self.force else "")


@dataclass
class QueueRead:
    edits: list[QueuedEdit]
    problems: list[str]
    end: int  # byte offset after the last complete line read


def _edit(line: str) -> QueuedEdit:
    data = json.loads(line)
    edit = QueuedEdit(id=data["id"], rung=data["rung"], force=bool(data.get("force", False)),
                      seen=data.get("seen"), time=float(data.get("time", 0.0)), replaces=data.get("replaces"))
    if not isinstance(edit.id, str) or isinstance(edit.rung, bool) or not isinstance(edit.rung, int):
        raise ValueError("id must be a string and rung an integer")
    return edit


class EditQueue:
    def __init__(self, index: Path):
        self.path = index.with_name(index.name.removesuffix(".json") + ".edits.jsonl")

    def lock(self, timeout: float = -1) -> FileLock:
        return FileLock(f"{self.path}.lock", timeout=timeout)

    def append(self, edits: list[QueuedEdit]) -> None:
        stamped = [QueuedEdit(e.id, e.rung, e.force, e.seen, e.time or round(time.time(), 3), e.replaces)
                   for e in edits]
        text = "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in stamped)
        with self.lock():
            append_lines(self.path, text)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, offset: int = 0) -> QueueRead:
        """Edits from byte `offset` on; a bad or incomplete line is reported (file, line) and skipped."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return QueueRead([], [], 0)
        out = QueueRead([], [], len(data))
        number = data[:offset].count(b"\n")
        for raw in data[offset:].split(b"\n"):
            number += 1
            if not raw.strip():
                continue
            try:
                out.edits.append(_edit(raw.decode("utf-8")))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                out.problems.append(f"{self.path}, line {number}: not a queued edit ({exc}); skipped")
        return out

    def pending(self) -> dict[str, int]:
        """The last queued rung of each id not applied yet (bad lines skipped: `index show` reports them)."""
        return {edit.id: edit.rung for edit in self.read().edits}

    def clear(self) -> None:
        """Empty the queue (the caller holds the lock and has written the edits into the index)."""
        if self.path.exists():
            os.truncate(self.path, 0)
