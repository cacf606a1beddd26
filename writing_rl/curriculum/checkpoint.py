"""The index travels with verl's checkpoints, so that model and curriculum stay consistent on resume."""

from __future__ import annotations

import shutil
from pathlib import Path

from writing_rl.curriculum.index_file import history_path
from writing_rl.curriculum.schedule import restore_index

SNAPSHOT_DIR = "writing_rl"


def snapshot_index(live_index: Path, checkpoint_dir: Path) -> Path | None:
    """Copy the index (and its history) into `<checkpoint_dir>/writing_rl/`."""
    if not live_index.exists():
        return None
    target = checkpoint_dir / SNAPSHOT_DIR
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(live_index, target / live_index.name)
    if history_path(live_index).exists():
        shutil.copyfile(history_path(live_index), target / history_path(live_index).name)
    return target / live_index.name


def restore_from_checkpoint(checkpoint_dir: Path, live_index: Path) -> bool:
    """Put the checkpoint's index back; False when the checkpoint has none (older run)."""
    snapshot = checkpoint_dir / SNAPSHOT_DIR / live_index.name
    if not snapshot.exists():
        return False
    restore_index(snapshot, live_index)
    return True
