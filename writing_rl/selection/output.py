"""The selected prompts as training data: rows with ladders -> `data build` parquet -> the index file."""

from __future__ import annotations

import json
from pathlib import Path

from writing_rl.curriculum.index_creation import create_index
from writing_rl.data.build import BuildResult, build_parquet
from writing_rl.data.rows import DataError
from writing_rl.selection.select import Selection

SELECTED_ROWS = "selected.jsonl"


def write_selected_rows(selection: Selection, out_dir: Path) -> Path:
    """`{id, prompt, references: [weakest..strongest], criteria?}` per kept prompt, largest margin first."""
    path = out_dir / SELECTED_ROWS
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for outcome in selection.selected:
                row = {"id": outcome.prompt.id, "prompt": outcome.prompt.prompt, "references": outcome.ladder}
                if outcome.prompt.criteria:
                    row["criteria"] = outcome.prompt.criteria
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise DataError(f"--out-dir {out_dir}: cannot write {path.name} ({exc.strerror})") from exc
    return path


def write_training_data(selection: Selection, out_dir: Path, *, test_size: int, seed: int,
                        system_prompt: str | None, experiment: str, run_dir: Path) -> tuple[BuildResult, str]:
    """train/test parquet through `data build`, then the experiment's index over train.parquet."""
    rows = write_selected_rows(selection, out_dir)
    built = build_parquet(rows, out_dir, test_size=test_size, seed=seed, system_prompt=system_prompt)
    _, index_message = create_index([out_dir / "train.parquet"], experiment, run_dir)
    return built, index_message
