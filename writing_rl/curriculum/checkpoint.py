"""The index travels with verl's checkpoints, so that model and curriculum stay consistent on resume.

The coordinator (which writes the live index) and verl's trainer (which writes checkpoints) may run on
different nodes, so a snapshot crosses between them as text, never as a path one of them cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from writing_rl.curriculum.index_file import history_path, write_text_atomically
from writing_rl.curriculum.swap import read_quietly

SNAPSHOT_DIR = "writing_rl"


@dataclass(frozen=True)
class IndexSnapshot:
    """The index file and its promotion history, as text."""

    index_name: str
    index: str
    history: str

    @classmethod
    def read(cls, live_index: Path) -> IndexSnapshot | None:
        """The live files as they are now; None when no index exists yet."""
        try:
            index = read_quietly(live_index)  # a checkpoint is no person reading the file (see swap.py)
        except FileNotFoundError:
            return None
        history_file = history_path(live_index)
        history = history_file.read_text(encoding="utf-8") if history_file.exists() else ""
        return cls(live_index.name, index, history)

    def save_into(self, checkpoint_dir: Path) -> Path:
        """Write `<checkpoint_dir>/writing_rl/<index name>` (and its history); returns the index's path."""
        target = checkpoint_dir / SNAPSHOT_DIR / self.index_name
        write_text_atomically(history_path(target), self.history)
        write_text_atomically(target, self.index)
        return target

    @classmethod
    def load_from(cls, checkpoint_dir: Path, index_name: str) -> IndexSnapshot | None:
        """The snapshot a checkpoint holds; None when it has none (an older run, or another method)."""
        return cls.read(checkpoint_dir / SNAPSHOT_DIR / index_name)

    def restore_to(self, live_index: Path) -> None:
        """Put the snapshot back in place of the live index and history (each replaced atomically)."""
        write_text_atomically(history_path(live_index), self.history)
        write_text_atomically(live_index, self.index)
