"""The curriculum: which rung each prompt is on, when it moves up, and keeping the index file in step
with both the training and a person editing it between steps. Plain Python, single writer."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writing_rl.curriculum.index_file import (
    IndexFileError,
    append_history,
    history_path,
    parse_index,
    read_history,
    render_index,
    write_index,
)

logger = logging.getLogger(__name__)


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
    def __init__(self, path: str | Path, ladders: Mapping[str, int], rule: PromotionRule):
        self.path = Path(path)
        self.history_path = history_path(self.path)
        self.ladders = dict(ladders)
        self.rule = rule
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else None
        if text is None:
            raise IndexFileError(f"{self.path}: not found; create it with `writing-rl index create`")
        self.state = parse_index(text, self.path)
        validate_state(self.state, self.ladders, self.path)
        for key in self.ladders:
            self.state.setdefault(key, 0)
        self._written_text = text
        self._written_stat = self._stat()
        self._pending: list[dict[str, Any]] = []
        self.mastered = {r["id"] for r in read_history(self.history_path) if r.get("mastered")}
        self.promotions_total = 0
        self.edits_adopted = 0
        self.edits_rejected = 0

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def rung(self, prompt_id: str) -> int:
        ladder = self.ladders.get(prompt_id, 1)
        return min(self.state.get(prompt_id, 0), ladder - 1)

    def pick_up_edits(self) -> str | None:
        """Adopt a person's edit made since our last write; returns a problem description if it was rejected.

        Keys the person changed take the person's value; keys they did not touch keep the training's
        value (so promotions made meanwhile survive). An invalid edit is kept beside the index as
        `<name>.rejected-<time>` and training continues on the last good state.
        """
        if self._stat() == self._written_stat:
            return None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        if text == self._written_text:
            self._written_stat = self._stat()
            return None
        try:
            edited = parse_index(text, self.path)
            validate_state(edited, self.ladders, self.path)
        except IndexFileError as exc:
            kept = self.path.with_name(f"{self.path.name}.rejected-{time.strftime('%Y%m%d-%H%M%S')}")
            if text:
                kept.write_text(text, encoding="utf-8")
            self.edits_rejected += 1
            problem = f"{exc}; training continues on the last good state; the edit is kept in {kept}"
            logger.error("index edit rejected: %s", problem)
            self.save(force=True)
            return problem
        before = parse_index(self._written_text, self.path)
        changed = {k: v for k, v in edited.items() if before.get(k) != v}
        self.state.update(changed)
        self.edits_adopted += 1
        logger.warning("index edited by hand: adopted %d change(s): %s", len(changed),
                       ", ".join(f"{k}={v}" for k, v in sorted(changed.items())[:10]))
        self.save(force=True)
        return None

    def record_group(self, prompt_id: str, rung_used: int, wins: int, total: int, step: int) -> dict | None:
        """Apply the promotion rule to one finished group; at most one rung, capped at the top."""
        if not self.rule.promotes(wins, total):
            return None
        if self.rung(prompt_id) != rung_used:  # moved meanwhile (a hand edit): that decision stands
            return None
        top = self.ladders.get(prompt_id, 1) - 1
        record = {"step": step, "id": prompt_id, "from": rung_used, "to": min(rung_used + 1, top),
                  "wins": wins, "n": total, "time": round(time.time(), 3)}
        if rung_used >= top:
            record["mastered"] = True
            self.mastered.add(prompt_id)
        else:
            self.state[prompt_id] = rung_used + 1
            self.promotions_total += 1
        self._pending.append(record)
        return record

    def save(self, force: bool = False) -> None:
        """Write the index (atomically) and append pending history lines."""
        text = render_index(self.state)
        if force or text != self._written_text:
            write_index(self.path, self.state)
            self._written_text = text
            self._written_stat = self._stat()
        append_history(self.history_path, self._pending)
        self._pending = []

    def mean_rung(self) -> float:
        return sum(self.state.values()) / len(self.state) if self.state else 0.0


def restore_index(snapshot: Path, live: Path) -> None:
    """Put a checkpointed index (and its history) back in place of the live one."""
    shutil.copyfile(snapshot, live.with_suffix(".restore.tmp"))
    os.replace(live.with_suffix(".restore.tmp"), live)
    snapshot_history = history_path(snapshot)
    if snapshot_history.exists():
        shutil.copyfile(snapshot_history, history_path(live))
