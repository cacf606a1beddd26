"""What to do with a person's version of the index file: per key, adopt it or keep training's value.

The rule, per key whose value differs from what training last wrote:
- the value equals one training moved that key away from (a promotion, or an `index set` edit), and
  no version of the file showing that move was read before the person saved: the person's buffer
  predates the move (a stale copy), so training's value stays (`writing-rl index set ID=RUNG --force`
  sets it anyway);
- anything else is adopted (the person's value wins, a demotion included).
Keys missing from the person's file stay (ids of the training data are never removed).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class EditDecision:
    adopted: dict[str, int] = field(default_factory=dict)
    stale: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (the file's value, training's kept)
    removed: list[str] = field(default_factory=list)


def decide(edited: Mapping[str, int], written: Mapping[str, int], state: Mapping[str, int],
           moves: Mapping[str, Mapping[int, int]], last_read_version: int) -> EditDecision:
    """`written`: what training last wrote; `moves[id][rung]`: the newest version in which training wrote
    the id away from `rung`; `last_read_version`: the newest version someone read."""
    decision = EditDecision()
    for key, value in edited.items():
        if written.get(key) == value or state[key] == value:
            continue
        moved_in = moves.get(key, {}).get(value)
        if moved_in is not None and moved_in > last_read_version:
            decision.stale[key] = (value, state[key])
        else:
            decision.adopted[key] = value
    decision.removed = [key for key in written if key not in edited]
    return decision


def keep_rejected(index: Path, text: str) -> Path:
    """Keep a rejected edit beside the index under a name no other copy has (sub-second time + counter)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S.%f")
    counter = 0
    while True:
        target = index.with_name(f"{index.name}.rejected-{stamp}-{counter}")
        try:
            with open(target, "x", encoding="utf-8") as handle:  # "x": never overwrites a copy
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except FileExistsError:
            counter += 1
            continue
        return target


def shown(ids: list[str], limit: int = 10) -> str:
    """A few ids for a log line: odd ones (empty, spaces, newlines) in repr()."""
    text = ", ".join(printable_id(key) for key in ids[:limit])
    return text + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def printable_id(key: str) -> str:
    return key if key and key.isprintable() and key.strip() == key else repr(key)


def force_command(key: str, rung: int, index: Path) -> str:
    """The command that sets a value regardless of the stale rule."""
    return f"writing-rl index set {shlex.quote(f'{key}={rung}')} --force --file {shlex.quote(str(index))}"
