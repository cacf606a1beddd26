"""What a selection did: `report.json` (for programs), `report.md` and a margin histogram PNG (for people)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from writing_rl.selection.calls import CallCounts
from writing_rl.selection.costs import total_usd, usd_text
from writing_rl.selection.endpoints import Endpoint
from writing_rl.selection.estimate import JudgePrices, all_pairs_calls
from writing_rl.selection.select import Selection

HISTOGRAM_PNG = "margin_histogram.png"


def _counts(counts: CallCounts, prices: Endpoint | JudgePrices) -> dict[str, Any]:
    return {"calls": counts.calls, "cached": counts.cached, "failed": counts.failed,
            "prompt_tokens": counts.prompt_tokens, "completion_tokens": counts.completion_tokens,
            "usd": total_usd(prices.cost(counts.prompt_tokens, counts.completion_tokens)),
            "paid_now_prompt_tokens": counts.paid_prompt_tokens,
            "paid_now_completion_tokens": counts.paid_completion_tokens,
            "paid_now_usd": total_usd(prices.cost(counts.paid_prompt_tokens, counts.paid_completion_tokens))}


def build_report(selection: Selection, writers: list[tuple[Endpoint, CallCounts]], judge: CallCounts,
                 judge_unparseable: int, prices: JudgePrices, settings: dict[str, Any]) -> dict[str, Any]:
    candidates = [endpoint.name for endpoint, _ in writers[1:]]
    margins = {o.prompt.id: (o.margin.value if o.margin else None) for o in selection.outcomes}
    ladders = {o.prompt.id: [candidates[i] for i in o.order.ladder] for o in selection.selected
               if o.order and o.order.ladder}
    generation = {endpoint.name: _counts(counts, endpoint) for endpoint, counts in writers}
    judge_report = {**_counts(judge, prices), "unparseable": judge_unparseable,
                    "all_pairs_calls": all_pairs_calls(len(selection.outcomes), len(candidates)),
                    "policy_comparisons_undecided": sum(o.margin.undecided for o in selection.outcomes if o.margin)}
    win_counts = {o.prompt.id: dict(zip(candidates, o.order.wins, strict=True)) for o in selection.outcomes
                  if o.order}
    return {
        "settings": settings,
        "prompts": len(selection.outcomes),
        "policy": writers[0][0].name,
        "candidates": candidates,
        "selected": [o.prompt.id for o in selection.selected],
        "margins": margins,
        "dropped": selection.dropped,
        "drop_reasons": dict(Counter(reason.split(":")[0] for reason in selection.dropped.values())),
        "ladders": ladders,
        "win_counts": win_counts,
        "ladder_lengths": {str(k): v for k, v in sorted(Counter(len(v) for v in ladders.values()).items())},
        "generation": generation,
        "judge": judge_report,
        "usd": total_usd(judge_report["usd"], *(g["usd"] for g in generation.values())),
        "paid_now_usd": total_usd(judge_report["paid_now_usd"], *(g["paid_now_usd"] for g in generation.values())),
    }


def summary_line(report: dict[str, Any]) -> dict[str, Any]:
    """The `--json` summary: counts, calls and cost (report.json has the rest)."""
    judge = report["judge"]
    return {"prompts": report["prompts"], "selected": len(report["selected"]), "dropped": len(report["dropped"]),
            "drop_reasons": report["drop_reasons"], "judge_calls": judge["calls"],
            "judge_calls_cached": judge["cached"], "judge_calls_all_pairs": judge["all_pairs_calls"],
            "generations": sum(g["calls"] for g in report["generation"].values()),
            "generations_cached": sum(g["cached"] for g in report["generation"].values()),
            "usd": report["usd"], "paid_now_usd": report["paid_now_usd"]}


def margin_histogram(report: dict[str, Any]) -> list[tuple[float, int, int]]:
    """(margin, prompts, of them selected) for every possible margin 0, 1/K, ..., 1."""
    k = len(report["candidates"])
    margins = report["margins"]
    counts = Counter(m for m in margins.values() if m is not None)
    selected = Counter(margins[i] for i in report["selected"])
    return [(i / k, counts.get(i / k, 0), selected.get(i / k, 0)) for i in range(k + 1)]


def write_reports(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = out_dir / "report.json", out_dir / "report.md", out_dir / HISTOGRAM_PNG
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    histogram = margin_histogram(report)
    _plot(histogram, png_path)
    md_path.write_text(_markdown(report, histogram), encoding="utf-8")
    return [json_path, md_path, png_path]


def _plot(histogram: list[tuple[float, int, int]], path: Path) -> None:
    from matplotlib.figure import Figure  # imported here: it takes a second, and only this step needs it
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 3.5))  # no pyplot: no GUI backend, no global state
    axes = figure.subplots()
    labels = [f"{m:.2f}" for m, _, _ in histogram]
    kept = [k for _, _, k in histogram]
    axes.bar(labels, kept, color="#4c72b0", label="selected")
    axes.bar(labels, [n - k for _, n, k in histogram], bottom=kept, color="#c8c8c8", label="not selected")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    axes.set_xlabel("margin (fraction of candidates that beat the policy in both orders)")
    axes.set_ylabel("prompts")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _markdown(report: dict[str, Any], histogram: list[tuple[float, int, int]]) -> str:
    judge = report["judge"]
    widest = max([n for _, n, _ in histogram] + [1])
    lines = ["# Margin-aware data selection", "",
             f"{report['prompts']} prompts; policy `{report['policy']}`; candidates "
             + ", ".join(f"`{c}`" for c in report["candidates"]) + ".",
             f"**{len(report['selected'])} selected**, {len(report['dropped'])} dropped.", "",
             "## Margins", "", "margin = fraction of candidates that beat the policy's response in both orders.", "",
             "| margin | prompts | selected | |", "| ---: | ---: | ---: | :--- |"]
    lines += [f"| {m:.2f} | {n} | {k} | {'#' * round(40 * n / widest)} |" for m, n, k in histogram]
    unknown = sum(m is None for m in report["margins"].values())
    lines += ["", f"Margin unknown (generation or judge failed): {unknown}.", f"![margin histogram]({HISTOGRAM_PNG})",
              "", "## Why prompts were dropped", "", "| reason | prompts |", "| :--- | ---: |"]
    lines += [f"| {reason} | {count} |" for reason, count in sorted(report["drop_reasons"].items())]
    lines += ["", "## Ladder lengths", "", "| references | prompts |", "| ---: | ---: |"]
    lines += [f"| {length} | {count} |" for length, count in report["ladder_lengths"].items()]
    lines += ["", "## Calls, tokens and cost", "",
              f"Judge calls: {judge['calls']} ({judge['cached']} from the cache, {judge['failed']} failed, "
              f"{judge['unparseable']} unparseable); judging all pairs of the K+1 responses would take "
              f"{judge['all_pairs_calls']}. Policy-vs-candidate pairs the judge could not separate in both orders "
              f"(tie, orders disagree, unparseable): {judge['policy_comparisons_undecided']}.", "",
              "| endpoint | calls | cached | failed | prompt tokens | completion tokens | USD | paid now USD |",
              "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = [*report["generation"].items(), ("judge", judge)]
    lines += [f"| {name} | {c['calls']} | {c['cached']} | {c['failed']} | {c['prompt_tokens']} | "
              f"{c['completion_tokens']} | {usd_text(c['usd'], 4)} | {usd_text(c['paid_now_usd'], 4)} |"
              for name, c in rows]
    lines += ["", f"Total: {usd_text(report['usd'], 4)} for the whole selection, {usd_text(report['paid_now_usd'], 4)}"
              " paid by this run (cached answers cost nothing again).", ""]
    return "\n".join(lines)
