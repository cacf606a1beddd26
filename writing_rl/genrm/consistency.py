"""Both-order consistency of the GenRM from verl's validation dumps.

verl scores each rollout alone, so no reward call sees both orders of a pair; the per-step number comes from
the JSONL verl writes per validation (`trainer.validation_data_dir=DIR` -> `DIR/<step>.jsonl`), whose lines carry
what `writing_rl.genrm.reward.compute_score` returned (`pair_id`, `preferred`, `verdict`).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from writing_rl.data.rows import DataError


def pair_verdicts(lines: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """pair id -> {preferred side: which text the GenRM preferred there ("chosen", "rejected", "tie", "none")}."""
    pairs: dict[str, dict[str, str]] = defaultdict(dict)
    for line in lines:
        side, verdict = line["preferred"], line["verdict"]
        picked = verdict if verdict in ("tie", "none") else ("chosen" if verdict == side else "rejected")
        pairs[str(line["pair_id"])][side] = picked
    return pairs


def consistency(lines: list[dict[str, Any]]) -> dict[str, float | int]:
    """Over pairs with both orders in the dump: `both_order_consistency` (the same text preferred in both orders)
    and `both_order_accuracy` (the human-preferred text in both)."""
    both = [p for p in pair_verdicts(lines).values() if len(p) == 2]
    if not both:
        return {"pairs_with_both_orders": 0, "both_order_consistency": 0.0, "both_order_accuracy": 0.0}
    consistent = sum(p["A"] == p["B"] and p["A"] in ("chosen", "rejected") for p in both)
    correct = sum(p["A"] == p["B"] == "chosen" for p in both)
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
