"""A curriculum index for a train set: what `writing-rl index create`, the training script and data selection do
before training starts."""

from __future__ import annotations

from pathlib import Path

from writing_rl.curriculum.edits import shown
from writing_rl.curriculum.index_file import index_path, read_index, write_index
from writing_rl.curriculum.ladders import ladder_lengths


def create_index(data: list[Path], experiment: str, run_dir: Path, force: bool = False) -> tuple[Path, str]:
    """A fresh index (every id at rung 0); an existing one keeps every rung and gains the ids of the data it
    lacks, at rung 0 (a resumed run, or data with new rows)."""
    path = index_path(run_dir, experiment)
    ladders = ladder_lengths(data)
    if path.exists() and not force:
        state = read_index(path)
        missing = sorted(set(ladders) - set(state))
        unknown = sorted(set(state) - set(ladders))
        beyond = sorted(key for key in set(state) & set(ladders) if state[key] >= ladders[key])
        note = (f"; {len(unknown)} id(s) in it are not in the data (preflight fails on them): {shown(unknown)}"
                if unknown else "")
        if beyond:  # the data's ladders are shorter than when these rungs were reached (a rebuilt selection)
            note += (f"; {len(beyond)} id(s) are on a rung beyond their ladder in the data, e.g. "
                     f"{beyond[0]}={state[beyond[0]]} (valid: 0..{ladders[beyond[0]] - 1}), and preflight fails on "
                     f"them: {shown(beyond)}; start the curriculum afresh with `writing-rl index create --force`, "
                     "or lower them with `writing-rl index set ID=RUNG --force`")
        if not missing:
            return path, f"{path} already exists ({len(state)} ids); left unchanged to continue training{note}"
        write_index(path, {**state, **dict.fromkeys(missing, 0)})
        return path, (f"{path} already exists ({len(state)} ids); kept every rung and added {len(missing)} id(s) "
                      f"of the data at rung 0: {shown(missing)}{note}")
    write_index(path, dict.fromkeys(ladders, 0))
    return path, f"wrote {path}: {len(ladders)} ids at rung 0"
