"""From both-order judgements to per-prompt and overall numbers.

A pair is the policy's sample k against the baseline's sample k of one prompt, judged policy first and
baseline first. `win`: the policy wins in both orders; `loss`: the baseline wins in both; `flip`: each order
prefers whatever is shown first (or second), so position decided; `tie`: any other parsed combination.
Score 1 / 0 / 0.5 (tie and flip count half). A pair whose verdict could not be parsed scores 0 in the headline
win rate, as training scores it (a policy that learned to break the judge's format must not look better for it);
the rate over parsed pairs only is reported beside it. A pair the judge failed on (an HTTP error, no answer) has no
score: the headline is over the pairs that got an answer, and the range the failed pairs could move it over (all
lost, all won) is reported with a warning, so a judge that fails more often on one side's texts cannot raise a
rate silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from writing_rl.evaluation.criteria import CriterionScore
from writing_rl.evaluation.statistics import bootstrap_ci, length_control, length_feature
from writing_rl.judge.evaluation import PairResult, PreferencePair
from writing_rl.judge.parsing import Verdict

SCORES = {"win": 1.0, "loss": 0.0, "tie": 0.5, "flip": 0.5, "empty_policy": 0.0, "empty_baseline": 1.0}
"""An empty response (nothing after any `</think>`) is not sent to the judge: it loses, as training scores it."""
HEADLINE_SCORES = {**SCORES, "parse_failure": 0.0}


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
    pair: PreferencePair
    result: PairResult | None
    """None when a side's response is empty: nothing to judge."""

    @property
    def outcome(self) -> str:
        if self.result is not None:
            return classify(self.result)
        empty_policy, empty_baseline = not self.pair.chosen.strip(), not self.pair.rejected.strip()
        return "tie" if empty_policy and empty_baseline else "empty_policy" if empty_policy else "empty_baseline"

    @property
    def score(self) -> float | None:
        """The headline score: an unparseable verdict counts as not won; None when the judge failed."""
        return HEADLINE_SCORES.get(self.outcome)

    @property
    def parsed_score(self) -> float | None:
        """The score over parsed verdicts only (None for a parse or judge failure)."""
        return SCORES.get(self.outcome)

    @property
    def identical(self) -> bool:
        return self.pair.chosen == self.pair.rejected

    @property
    def policy_words(self) -> int:
        return word_count(self.pair.chosen)

    @property
    def baseline_words(self) -> int:
        return word_count(self.pair.rejected)


def _verdicts(pair: JudgedPair) -> list[str | None]:
    """[policy-first, baseline-first] verdicts (None: unparsed, failed, or not judged)."""
    if pair.result is None:
        return [None, None]
    return [c.verdict.value if c.verdict else None for c in (pair.result.chosen_first, pair.result.chosen_second)]


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
                                                       "judge_failure", "empty_policy", "empty_baseline")},
            "policy_words": _mean([p.policy_words for p in members]),
            "baseline_words": _mean([p.baseline_words for p in members]),
            "verdicts": [_verdicts(p) for p in sorted(members, key=lambda m: m.sample)],
        }
        if prompt_id in criteria:
            record.update(_criteria_record(criteria[prompt_id]))
        records.append(record)
    return records


def _per_prompt_means(pairs: Sequence[JudgedPair], failed_as: float | None = None) -> list[float]:
    """Each prompt's mean headline score; a judge-failed pair is skipped, or scored `failed_as`."""
    grouped: dict[str, list[float]] = {}
    for pair in pairs:
        score = pair.score if pair.score is not None else failed_as
        if score is not None:
            grouped.setdefault(pair.prompt_id, []).append(score)
    return [float(np.mean(scores)) for scores in grouped.values()]


def summarize_policy(pairs: Sequence[JudgedPair],
                     criteria: dict[str, dict[str, list[CriterionScore]]], *, resamples: int = 2000,
                     seed: int = 0, complete: bool = True) -> dict[str, object]:
    """The summary `eval policy` writes. Rates are null when no pair got a verdict that could be parsed; `warnings`
    names everything a reader of the headline must know (failures, an unidentified length control, ...)."""
    counts = Counter(p.outcome for p in pairs)
    parsed = [p for p in pairs if p.parsed_score is not None]
    # not one verdict read: the judge or the prompt file is wrong, and no rate would mean anything
    rated = list(pairs) if parsed else []
    answered = [p for p in rated if p.score is not None]
    per_prompt = _per_prompt_means(rated)
    judgements = [c for p in pairs if p.result for c in (p.result.chosen_first, p.result.chosen_second)]
    critic = [s for sides in criteria.values() for items in sides.values() for s in items]

    def side_scores(side: str) -> list[float]:
        return [s.score for sides in criteria.values() for s in sides.get(side, []) if s.score is not None]

    def rate(n: int) -> float | None:
        return n / len(answered) if answered else None

    win_rate = _mean(per_prompt)
    interval = list(bootstrap_ci(per_prompt, resamples=resamples, seed=seed)) if per_prompt else None
    failed_range = None
    if counts["judge_failure"] and parsed:
        failed_range = [_mean(_per_prompt_means(pairs, failed_as=0.0)), _mean(_per_prompt_means(pairs, failed_as=1.0))]
    x = length_feature([p.policy_words for p in answered], [p.baseline_words for p in answered])
    outcomes = [float(p.score) for p in answered]  # type: ignore[arg-type]
    length = length_control(outcomes, x, [p.prompt_id for p in answered], seed=seed)
    summary: dict[str, object] = {
        "complete": complete,
        "prompts": len(per_prompt),
        "pairs": len(pairs),
        "usable_pairs": len(parsed),
        "answered_pairs": sum(p.score is not None for p in pairs),
        "win_rate": win_rate,
        "win_rate_ci": interval,
        "parsed_only_win_rate": _mean([float(p.parsed_score) for p in parsed]),  # type: ignore[arg-type]
        "win_rate_range_over_judge_failures": failed_range,
        "wins": counts["win"], "losses": counts["loss"], "ties": counts["tie"], "flips": counts["flip"],
        "unparsed_pairs": counts["parse_failure"], "judge_failed_pairs": counts["judge_failure"],
        "identical_pairs": sum(p.identical for p in pairs),
        "empty_policy_pairs": counts["empty_policy"], "empty_baseline_pairs": counts["empty_baseline"],
        "tie_rate": rate(counts["tie"]),
        "flip_rate": rate(counts["flip"]),
        "parse_failures": sum(c.unparseable for c in judgements),
        "judge_failures": sum(c.failed for c in judgements),
        "length_controlled_win_rate": length.win_rate,
        "length_controlled_win_rate_ci": length.interval,
        "length_coefficient": length.coefficient,
        "length_control_note": length.note,
        "policy_longer_share": float(np.mean(x > 0)) if answered else None,
        "mean_words_policy": _mean([p.policy_words for p in pairs]),
        "mean_words_baseline": _mean([p.baseline_words for p in pairs]),
        "criteria_prompts": len(criteria),
        "criteria_mean_policy": _mean(side_scores("policy")),
        "criteria_mean_baseline": _mean(side_scores("baseline")),
        "criteria_parse_failures": sum(s.score is None and not s.failed for s in critic),
        "criteria_judge_failures": sum(s.failed for s in critic),
    }
    summary["warnings"] = summary_warnings(summary)
    return summary


def summary_warnings(summary: dict[str, object]) -> list[str]:
    """What the headline does not say by itself, one sentence each (console, summary.json, report)."""
    warnings = []
    if not summary["complete"]:
        warnings.append(f"partial: interrupted after {summary['pairs']} pair(s); the rates cover those only")
    if summary["usable_pairs"] == 0:
        warnings.append("no pair got a verdict that could be parsed (check the judge and --template): no rate "
                        "can be given")
    if summary["unparsed_pairs"]:
        warnings.append(f"{summary['unparsed_pairs']} pair(s) got a verdict that could not be parsed: counted as "
                        f"not won by the policy (as training counts them); over parsed pairs only the rate is "
                        f"{_text(summary['parsed_only_win_rate'])}")
    low_high = summary["win_rate_range_over_judge_failures"]
    if low_high:
        low, high = low_high  # type: ignore[misc]
        warnings.append(f"{summary['judge_failed_pairs']} pair(s) got no answer from the judge (HTTP errors, see "
                        f"-v) and are left out: counted as lost or won, the win rate would be {_text(low)} to "
                        f"{_text(high)}; a judge that fails more on one side's texts (e.g. longer ones) moves it")
    for side in ("policy", "baseline"):
        if summary[f"empty_{side}_pairs"]:
            warnings.append(f"{summary[f'empty_{side}_pairs']} pair(s) have an empty {side} response (nothing after "
                            f"any </think>): not judged, counted as lost by the {side}, as training scores them")
    if summary["identical_pairs"]:
        warnings.append(f"{summary['identical_pairs']} pair(s) compare two identical texts (is --baseline the "
                        "--policy file?)")
    if summary["length_control_note"]:
        warnings.append(str(summary["length_control_note"]))
    return warnings


def _text(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"
