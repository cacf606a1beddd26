"""A self-contained HTML report: summary, plots (matplotlib, embedded as base64 PNG) and per-prompt rows."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to PNG bytes
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from writing_rl.evaluation.criteria import CriterionScore
from writing_rl.evaluation.outcomes import JudgedPair

MAX_ROWS = 500


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def win_rate_figure(summary: dict[str, Any]) -> Figure:
    figure, axis = plt.subplots(figsize=(5, 3.2))
    shown = [(label, summary[key], summary[f"{key}_ci"]) for label, key in
             (("win rate", "win_rate"), ("length-controlled", "length_controlled_win_rate"))
             if summary[key] is not None]  # a rate the data cannot give is not drawn (the warnings say why)
    labels = [label for label, _, _ in shown] or ["no rate"]
    values = [value for _, value, _ in shown] or [0.0]
    intervals = [interval for _, _, interval in shown] or [[0.0, 0.0]]
    errors = [[max(0.0, v - lo) for v, (lo, _) in zip(values, intervals, strict=True)],
              [max(0.0, hi - v) for v, (_, hi) in zip(values, intervals, strict=True)]]
    axis.bar(labels, values, yerr=errors, capsize=8, color=["tab:blue", "tab:green"][: len(labels)])
    axis.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="no difference")
    axis.set_ylim(0, 1)
    axis.set_ylabel("policy vs baseline")
    axis.set_title("Win rate with 95% bootstrap interval")
    axis.legend(loc="lower right")
    return figure


def length_figure(pairs: Sequence[JudgedPair]) -> Figure:
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.hist([p.policy_words for p in pairs], bins=20, alpha=0.6, label="policy")
    axis.hist([p.baseline_words for p in pairs], bins=20, alpha=0.6, label="baseline")
    axis.set_xlabel("words per response")
    axis.set_ylabel("responses")
    axis.set_title("Response lengths")
    axis.legend()
    return figure


def score_figure(records: Sequence[dict[str, Any]], criteria: dict[str, dict[str, list[CriterionScore]]]) -> Figure:
    """Per-prompt outcome scores; beside them, per-criterion critic scores of both sides when rows had criteria."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].hist([r["score"] for r in records if r["score"] is not None], bins=[0, 0.25, 0.5, 0.75, 1.0001])
    axes[0].set_xlabel("per-prompt outcome (1 win, 0.5 tie/flip, 0 loss)")
    axes[0].set_ylabel("prompts")
    axes[0].set_title("Pairwise outcomes")
    sides = {side: [s.score for per_prompt in criteria.values() for s in per_prompt.get(side, [])
                    if s.score is not None] for side in ("policy", "baseline")}
    if any(sides.values()):
        axes[1].hist(list(sides.values()), bins=range(0, 12), label=list(sides), alpha=0.8)
        axes[1].legend(loc="upper left")
    else:
        axes[1].text(0.5, 0.5, "no row carries criteria", ha="center", va="center")
    axes[1].set_xlabel("critic score per criterion (1-10)")
    axes[1].set_title("Criteria scores")
    return figure


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else ("" if value is None else str(value))
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def render_report(summary: dict[str, Any], pairs: Sequence[JudgedPair], records: Sequence[dict[str, Any]],
                  criteria: dict[str, dict[str, list[CriterionScore]]], *, title: str) -> str:
    figures = {"win rate": win_rate_figure(summary), "lengths": length_figure(pairs),
               "scores": score_figure(records, criteria)}
    images = "\n".join(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{_png(fig)}">'
                       f"<figcaption>{html.escape(name)}</figcaption></figure>" for name, fig in figures.items())
    summary_rows = [(k, str(v) if isinstance(v, list) else v) for k, v in summary.items() if k != "warnings"]
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in summary["warnings"])
    warnings_block = f'<h2>Read this first</h2><ul class="warnings">{warnings}</ul>' if warnings else ""
    prompt_columns = ["id", "pairs", "score", "win", "loss", "tie", "flip", "parse_failure", "judge_failure",
                      "policy_words", "baseline_words", "policy_criteria_mean", "baseline_criteria_mean"]
    prompt_rows = [[r.get(c) for c in prompt_columns] for r in records[:MAX_ROWS]]
    more = (f"<p>First {MAX_ROWS} of {len(records)} prompts; all are in per_prompt.jsonl.</p>"
            if len(records) > MAX_ROWS else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}figure{{display:inline-block;margin:0.5em}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
{warnings_block}
<p>Each pair (policy sample k vs baseline sample k) is judged twice, policy first and baseline first. A win must
hold in both orders; a flip (each order prefers the same position) and a tie count half; an unparseable verdict
counts as not won, and pairs the judge failed on are left out (with the range they could move the rate over,
above). The interval is a
percentile bootstrap over prompts. The length-controlled win rate is a logistic regression of the outcome on the
log length ratio, read at equal lengths: it assumes the length effect is linear in the log-odds and the same for
every prompt, and it is only given when pairs lie on both sides of equal length.</p>
{images}
<h2>Summary</h2>
{_table(summary_rows, ["metric", "value"])}
<h2>Per prompt</h2>
{more}
{_table(prompt_rows, prompt_columns)}
</body></html>
"""
