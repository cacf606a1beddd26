"""Both-order consistency of the GenRM: one definition, used per training step (`genrm_rl` trainer mode, through
`writing_rl.genrm.step_metrics`) and per validation from verl's dumps.

verl scores each rollout alone, so no reward call sees both orders of a pair; the numbers come from what
`writing_rl.genrm.reward.compute_score` returned for each rollout (`pair_id`, `preferred`, `verdict`), in a
training step's batch or in the JSONL verl writes per validation (`trainer.validation_data_dir=DIR` ->
`DIR/<step>.jsonl`).

A pair is consistent when the GenRM prefers the same text (chosen or rejected) in both orders; a tie or a
malformed answer is never consistent. With several rollouts per order (GRPO's n), every rollout of one order is
compared with every rollout of the other, so a pair counts with the fraction of such comparisons that agree
(with one rollout per order that is 0 or 1).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from itertools import product
from pathlib import Path
from typing import Any

from writing_rl.data.rows import DataError

PREFERRED_TEXTS = ("chosen", "rejected")


def picked_text(preferred: str, verdict: str) -> str:
    """Which text the GenRM preferred: "chosen", "rejected", "tie" or "none" (malformed)."""
    if verdict in ("tie", "none"):
        return verdict
    return "chosen" if verdict == preferred else "rejected"


def pair_verdicts(lines: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """pair id -> {preferred side: the text each rollout of that order preferred}."""
    pairs: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        pairs[str(line["pair_id"])][line["preferred"]].append(picked_text(line["preferred"], line["verdict"]))
    return pairs


def consistency(lines: list[dict[str, Any]]) -> dict[str, float | int]:
    """Over pairs with both orders present: `both_order_consistency` (the same text preferred in both orders)
    and `both_order_accuracy` (the human-preferred text in both), each a pair's share of agreeing cross-order
    comparisons, averaged over pairs."""
    both = [p for p in pair_verdicts(lines).values() if p.get("A") and p.get("B")]
    if not both:
        return {"pairs_with_both_orders": 0, "both_order_consistency": 0.0, "both_order_accuracy": 0.0}
    consistent = correct = 0.0
    for pair in both:
        comparisons = list(product(pair["A"], pair["B"]))
        consistent += sum(a == b and a in PREFERRED_TEXTS for a, b in comparisons) / len(comparisons)
        correct += sum(a == b == "chosen" for a, b in comparisons) / len(comparisons)
    return {"pairs_with_both_orders": len(both), "both_order_consistency": consistent / len(both),
            "both_order_accuracy": correct / len(both)}


def read_dump(path: Path) -> list[dict[str, Any]]:
    """The lines of one verl generations dump that carry the GenRM reward's fields."""
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
        if all(key in line for key in ("pair_id", "preferred", "verdict")):
            lines.append(line)
    return lines


def consistency_by_step(dump_dir: Path) -> dict[int, dict[str, float | int]]:
    """Per validation step (the dump's file name), the numbers of `consistency`."""
    if not dump_dir.is_dir():
        raise DataError(f"{dump_dir}: not a folder; give the trainer.validation_data_dir of the run")
    steps = sorted((int(p.stem), p) for p in dump_dir.glob("*.jsonl") if p.stem.isdigit())
    return {step: consistency(read_dump(path)) for step, path in steps}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m writing_rl.genrm.consistency",
                                     description="Both-order consistency and accuracy of the GenRM per validation "
                                                 "step, from verl's trainer.validation_data_dir; one JSON line per "
                                                 "step.")
    parser.add_argument("dump_dir", type=Path, help="the run's trainer.validation_data_dir")
    args = parser.parse_args(argv)
    try:
        for step, numbers in consistency_by_step(args.dump_dir).items():
            print(json.dumps({"step": step, **numbers}))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
