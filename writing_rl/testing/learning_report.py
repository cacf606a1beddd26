"""What the learning benchmark reports for each training run: the `summary.json` entry, the curves over steps
(PNG) and a Markdown report, from the job's own files (verl's metrics file and rollout dumps) and the final
`writing-rl eval policy` summary."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from writing_rl.testing.learning_task import honest_quality
from writing_rl.watch import WatchThresholds

WATCH_NAMES = tuple(vars(WatchThresholds()))


@dataclass
class RunOutcome:
    name: str
    method: str
    """brpo, writing_rl, or grpo (verl's `naive` manager with a rule reward)."""
    judge: str
    """honest, exploitable, or rule (no judge)."""
    model: str
    steps: list[dict[str, Any]]
    """verl's metrics per step, in step order (the file logger's `data`)."""
    rollouts: dict[int, list[str]] = field(default_factory=dict)
    """Step -> the texts the policy wrote that step (verl's rollout dumps)."""
    wall_s: float = 0.0
    evaluation: dict[str, Any] | None = None
    """`writing-rl eval policy`'s summary: the final policy against the base model, honest judge."""
    climbed_prompts: int | None = None
    """Writing-RL: prompts promoted at least once (the index history)."""


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """verl's file-logger lines -> each step's metrics, ordered by step."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line["data"] for line in sorted(lines, key=lambda line: line["step"]) if isinstance(line.get("step"), int)]


def read_rollouts(folder: Path) -> dict[int, list[str]]:
    """verl's `trainer.rollout_data_dir` dumps (`<step>.jsonl`, a row per rollout with its `output`)."""
    found = {}
    for path in sorted(folder.glob("*.jsonl")):
        if path.stem.isdigit():
            found[int(path.stem)] = [json.loads(line)["output"] for line in path.read_text().splitlines()
                                     if line.strip()]
    return found


def _values(steps: Sequence[dict[str, Any]], key: str) -> list[float]:
    return [float(s[key]) for s in steps if isinstance(s.get(key), int | float) and math.isfinite(s[key])]


def warning_steps(steps: Sequence[dict[str, Any]], thresholds: WatchThresholds | None = None
                  ) -> dict[str, int] | None:
    """Per watch metric that crossed its threshold, at how many steps (what `watch/warnings` counted); None when
    the run logged no watch metric (verl's own managers have no watch)."""
    if not any(key.startswith("watch/") for step in steps for key in step):
        return None
    thresholds = thresholds or WatchThresholds()
    counts = {name: sum(v > getattr(thresholds, name) for v in _values(steps, f"watch/{name}")) for name in WATCH_NAMES}
    return {name: count for name, count in counts.items() if count}


def fired_warnings(steps: Sequence[dict[str, Any]], thresholds: WatchThresholds | None = None) -> list[str] | None:
    """The watch metrics that crossed their threshold at some step; None without watch metrics."""
    counts = warning_steps(steps, thresholds)
    return None if counts is None else list(counts)


def seconds_per_step(steps: Sequence[dict[str, Any]]) -> float | None:
    """Mean step time after the first (which pays for warm-up); the first when it is the only one."""
    times = _values(steps, "timing_s/step")
    later = times[1:] or times
    return float(np.mean(later)) if later else None


def per_step(steps: Sequence[dict[str, Any]], key: str) -> float | None:
    values = _values(steps, key)
    return float(np.mean(values)) if values else None


def win_rate_against(texts: Sequence[str], baseline_qualities: Sequence[float]) -> float:
    """Share of (text, baseline text) pairs the hidden honest quality prefers the text in, ties counting half:
    a judge-free curve of what the honest judge measures at the end."""
    mine = np.array([honest_quality(t) for t in texts])[:, None]
    theirs = np.asarray(baseline_qualities, dtype=float)[None, :]
    return float(((mine > theirs) + 0.5 * (mine == theirs)).mean())


def gen_ms_per_token(steps: Sequence[dict[str, Any]]) -> float | None:
    """verl's generation time per generated token, after the first step: step time grows with response length,
    which training changes, so this is the fairer comparison of what a reward path costs."""
    return per_step(steps[1:] or steps, "timing_per_token_ms/gen")


def summary_entry(run: RunOutcome, naive: RunOutcome | None) -> dict[str, Any]:
    """One run's `summary.json` entry; `naive` is the plain-GRPO run its costs are compared with."""
    evaluation = run.evaluation or {}
    warnings = warning_steps(run.steps)
    seconds, naive_seconds = seconds_per_step(run.steps), seconds_per_step(naive.steps) if naive else None
    per_token, naive_per_token = gen_ms_per_token(run.steps), gen_ms_per_token(naive.steps) if naive else None
    return {
        "run": run.name, "method": run.method, "judge": run.judge, "steps": len(run.steps), "model": run.model,
        "win_rate": evaluation.get("win_rate"), "win_rate_ci": evaluation.get("win_rate_ci"),
        "length_controlled_win_rate": evaluation.get("length_controlled_win_rate"),
        "length_controlled_win_rate_ci": evaluation.get("length_controlled_win_rate_ci"),
        "eval_pairs": evaluation.get("pairs"), "eval_usable_pairs": evaluation.get("usable_pairs"),
        "eval_warnings": evaluation.get("warnings", []),
        "watch_warnings": None if warnings is None else list(warnings),
        "watch_warning_steps": warnings,
        # the one watch metric a length-neutral judge should leave near 0 (length grows under RL either way here)
        "length_reward_correlation_mean": per_step(run.steps, "watch/length_reward_correlation"),
        "response_tokens_mean": per_step(run.steps, "response_length/mean"),
        "seconds_per_step": seconds, "naive_seconds_per_step": naive_seconds,
        "step_time_ratio": seconds / naive_seconds if seconds and naive_seconds else None,
        "gen_ms_per_token": per_token,
        "gen_ms_per_token_ratio": per_token / naive_per_token if per_token and naive_per_token else None,
        "judge_calls_per_step": per_step(run.steps, "judge/calls"),
        "climbed_prompts": run.climbed_prompts, "wall_s": run.wall_s,
    }


def _format(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.{digits}f}" for v in value) + "]"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    return str(value)


TABLE_COLUMNS = (("run", "run"), ("steps", "steps"), ("win_rate", "win vs base"), ("win_rate_ci", "95% CI"),
                 ("length_controlled_win_rate", "LC win"), ("climbed_prompts", "climbed"),
                 ("watch_warning_steps", "watch warnings (steps)"),
                 ("length_reward_correlation_mean", "len-reward corr"), ("response_tokens_mean", "tokens"),
                 ("seconds_per_step", "s/step"), ("step_time_ratio", "x naive"),
                 ("gen_ms_per_token_ratio", "gen ms/token x naive"), ("judge_calls_per_step", "judge calls/step"),
                 ("wall_s", "wall s"))


def table(entries: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Header row, then one row per run, as text."""
    rows = [[title for _, title in TABLE_COLUMNS]]
    for entry in entries:
        rows.append([_format(entry.get(key), 1 if key in ("wall_s", "seconds_per_step", "response_tokens_mean") else 3)
                     for key, _ in TABLE_COLUMNS])
    return rows


def plain_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])


def plot_curves(runs: Sequence[RunOutcome], baseline_qualities: Sequence[float], path: Path) -> Path:
    """Three panels over steps: mean reward (each run on its own judge's scale), the rollouts' win rate against
    the base model's texts under the hidden honest quality, and the mean response length in tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for run in runs:
        steps = list(range(1, len(run.steps) + 1))
        axes[0].plot(steps, [s.get("critic/score/mean", float("nan")) for s in run.steps], label=run.name)
        dumped = sorted(run.rollouts)
        axes[1].plot(dumped, [win_rate_against(run.rollouts[s], baseline_qualities) for s in dumped],
                     label=run.name)
        axes[2].plot(steps, [s.get("response_length/mean", float("nan")) for s in run.steps], label=run.name)
    titles = ("reward (mean, each run's own scale)", "rollouts' win rate vs base (hidden honest quality)",
              "response length (tokens, mean)")
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    axes[1].axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def render_markdown(entries: Sequence[dict[str, Any]], plot: Path | None, command: str, notes: Sequence[str]) -> str:
    parts = ["# Learning benchmark", "", f"Command: `{command}`", "", markdown_table(table(entries)), ""]
    parts += [f"- {note}" for note in notes]
    if plot is not None:
        parts += ["", f"![curves]({plot.name})"]
    return "\n".join(parts) + "\n"
