"""From both-order judgements to per-prompt and overall numbers.

A pair is the policy's sample k against the baseline's sample k of one prompt, judged policy first and
baseline first. `win`: the policy wins in both orders; `loss`: the baseline wins in both; `flip`: each order
prefers whatever is shown first (or second), so position decided; `tie`: any other parsed combination.
Score 1 / 0 / 0.5 (tie and flip count half). A pair with an unparseable or failed judgement has no score
and is counted apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from writing_rl.evaluation.criteria import CriterionScore
from writing_rl.evaluation.statistics import (
    bootstrap_ci,
    bootstrap_length_controlled_ci,
    fit_length_controlled,
    length_feature,
)
from writing_rl.judge.evaluation import PairResult
from writing_rl.judge.parsing import Verdict

SCORES = {"win": 1.0, "loss": 0.0, "tie": 0.5, "flip": 0.5}


def word_count(text: str) -> int:
    return len(text.split())


def classify(result: PairResult) -> str:
    """`win`, `loss`, `tie`, `flip`, `judge_failure` or `parse_failure` (chosen = policy, rejected = baseline)."""
    first, second = result.chosen_first, result.chosen_second
    if first.failed or second.failed:
        return "judge_failure"
    if first.verdict is None or second.verdict is None:
        return "parse_failure"
    pair = (first.verdict, second.verdict)
    if pair == (Verdict.A, Verdict.B):
        return "win"
    if pair == (Verdict.B, Verdict.A):
        return "loss"
    if pair in ((Verdict.A, Verdict.A), (Verdict.B, Verdict.B)):
        return "flip"
    return "tie"


@dataclass(frozen=True)
class JudgedPair:
    prompt_id: str
    sample: int
    result: PairResult

    @property
    def outcome(self) -> str:
        return classify(self.result)

    @property
    def score(self) -> float | None:
        return SCORES.get(self.outcome)

    @property
    def policy_words(self) -> int:
        return word_count(self.result.pair.chosen)

    @property
    def baseline_words(self) -> int:
        return word_count(self.result.pair.rejected)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _criteria_record(scores: dict[str, list[CriterionScore]]) -> dict[str, object]:
    """Per criterion, each side's mean score over its samples; each side's mean over all criteria."""
    out: dict[str, object] = {}
    by_criterion: dict[str, dict[str, list[float]]] = {}
    for side, items in scores.items():
        for item in items:
            if item.score is not None:
                by_criterion.setdefault(item.criterion, {}).setdefault(side, []).append(item.score)
        out[f"{side}_criteria_mean"] = _mean([i.score for i in items if i.score is not None])
    out["criteria"] = {c: {side: _mean(v) for side, v in sides.items()} for c, sides in by_criterion.items()}
    return out


def prompt_records(pairs: Sequence[JudgedPair], criteria: dict[str, dict[str, list[CriterionScore]]]
                   ) -> list[dict[str, object]]:
    """One record per prompt with at least one judged pair, in first-seen order."""
    grouped: dict[str, list[JudgedPair]] = {}
    for pair in pairs:
        grouped.setdefault(pair.prompt_id, []).append(pair)
    records = []
    for prompt_id, members in grouped.items():
        counts = Counter(p.outcome for p in members)
        scored = [p.score for p in members if p.score is not None]
        record: dict[str, object] = {
            "id": prompt_id, "pairs": len(members), "score": _mean(scored),
            **{kind: counts.get(kind, 0) for kind in ("win", "loss", "tie", "flip", "parse_failure",
                                                       "judge_failure")},
            "policy_words": _mean([p.policy_words for p in members]),
            "baseline_words": _mean([p.baseline_words for p in members]),
            "verdicts": [[p.result.chosen_first.verdict.value if p.result.chosen_first.verdict else None,
                          p.result.chosen_second.verdict.value if p.result.chosen_second.verdict else None]
                         for p in sorted(members, key=lambda m: m.sample)],
        }
        if prompt_id in criteria:
            record.update(_criteria_record(criteria[prompt_id]))
        records.append(record)
    return records


def summarize_policy(pairs: Sequence[JudgedPair], records: Sequence[dict[str, object]],
                     criteria: dict[str, dict[str, list[CriterionScore]]], *, resamples: int = 2000,
                     seed: int = 0) -> dict[str, object]:
    counts = Counter(p.outcome for p in pairs)
    usable = [p for p in pairs if p.score is not None]
    per_prompt = [float(r["score"]) for r in records if r["score"] is not None]  # type: ignore[arg-type]
    outcomes = [float(p.score) for p in usable]  # type: ignore[arg-type]
    x = length_feature([p.policy_words for p in usable], [p.baseline_words for p in usable])
    fit = fit_length_controlled(outcomes, x)
    lc_ci = bootstrap_length_controlled_ci(outcomes, x, [p.prompt_id for p in usable], seed=seed)
    judgements = [c for p in pairs for c in (p.result.chosen_first, p.result.chosen_second)]
    critic = [s for sides in criteria.values() for items in sides.values() for s in items]

    def side_scores(side: str) -> list[float]:
        return [s.score for sides in criteria.values() for s in sides.get(side, []) if s.score is not None]

    def rate(n: int) -> float:
        return n / len(usable) if usable else 0.0

    win_rate = _mean(per_prompt)
    low, high = bootstrap_ci(per_prompt, resamples=resamples, seed=seed)
    return {
        "prompts": len(per_prompt),
        "pairs": len(pairs),
        "usable_pairs": len(usable),
        "win_rate": win_rate if win_rate is not None else 0.0,
        "win_rate_ci": [low, high],
        "wins": counts["win"], "losses": counts["loss"], "ties": counts["tie"], "flips": counts["flip"],
        "tie_rate": rate(counts["tie"]),
        "flip_rate": rate(counts["flip"]),
        "parse_failures": sum(c.unparseable for c in judgements),
        "judge_failures": sum(c.failed for c in judgements),
        "length_controlled_win_rate": fit.win_rate,
        "length_controlled_win_rate_ci": [lc_ci[0], lc_ci[1]],
        "length_coefficient": fit.length_coefficient,
        # the length-controlled estimate is read at equal length: near 0 or 1 here, it extrapolates
        "policy_longer_share": float(np.mean(x > 0)) if usable else 0.0,
        "mean_words_policy": _mean([p.policy_words for p in pairs]) or 0.0,
        "mean_words_baseline": _mean([p.baseline_words for p in pairs]) or 0.0,
        "criteria_prompts": len(criteria),
        "criteria_mean_policy": _mean(side_scores("policy")),
        "criteria_mean_baseline": _mean(side_scores("baseline")),
        "criteria_parse_failures": sum(s.score is None and not s.failed for s in critic),
        "criteria_judge_failures": sum(s.failed for s in critic),
    }
