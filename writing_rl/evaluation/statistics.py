"""Error bars and length control for a pairwise win rate (numpy only).

Outcomes are per comparison: 1 (policy wins in both orders), 0 (loses in both) or 0.5 (anything else).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
_RIDGE = 1e-3
"""A tiny L2 penalty keeps the fit finite when every outcome is the same (perfect separation)."""


def bootstrap_ci(per_prompt_scores: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the mean, resampling prompts with replacement (seeded, reproducible)."""
    scores = np.asarray(per_prompt_scores, dtype=float)
    if scores.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, scores.size, size=(resamples, scores.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def length_feature(policy_words: Sequence[int], baseline_words: Sequence[int]) -> np.ndarray:
    """log((1 + policy words) / (1 + baseline words)): 0 when both are equally long, symmetric in the sides."""
    return np.log1p(np.asarray(policy_words, dtype=float)) - np.log1p(np.asarray(baseline_words, dtype=float))


@dataclass(frozen=True)
class LengthControlled:
    win_rate: float
    """Predicted win rate at zero length difference: sigmoid(intercept)."""
    intercept: float
    length_coefficient: float
    """Change in the log-odds of a win per unit of log length ratio (> 0: the judge rewards length)."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit_length_controlled(outcomes: Sequence[float], length_diff: Sequence[float], *,
                          iterations: int = 50) -> LengthControlled:
    """Logistic regression of the outcome (fractional: a tie counts half) on the log length ratio, by IRLS.

    P(policy wins) = sigmoid(b0 + b1 * x), x = log length ratio; the length-controlled win rate is sigmoid(b0),
    the win rate this judge would give if both sides were equally long. Assumes the length effect is linear in
    the log-odds, the same for every prompt, and that length is not itself part of the quality being measured.
    """
    y = np.asarray(outcomes, dtype=float)
    x = np.asarray(length_diff, dtype=float)
    if y.size == 0:
        return LengthControlled(0.0, 0.0, 0.0)
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(iterations):
        p = _sigmoid(design @ beta)
        weights = np.clip(p * (1 - p), 1e-9, None)
        gradient = design.T @ (y - p) - _RIDGE * beta
        hessian = (design * weights[:, None]).T @ design + _RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return LengthControlled(float(_sigmoid(beta[0])), float(beta[0]), float(beta[1]))


def bootstrap_length_controlled_ci(outcomes: Sequence[float], length_diff: Sequence[float],
                                   groups: Sequence[str], *, resamples: int = 500, seed: int = 0,
                                   confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the length-controlled win rate, resampling prompts (all of a prompt's pairs)."""
    y, x = np.asarray(outcomes, dtype=float), np.asarray(length_diff, dtype=float)
    names, index = np.unique(np.asarray(groups), return_inverse=True)
    if names.size == 0:
        return (0.0, 0.0)
    members = [np.flatnonzero(index == g) for g in range(names.size)]
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(resamples):
        chosen = np.concatenate([members[g] for g in rng.integers(0, names.size, size=names.size)])
        rates.append(fit_length_controlled(y[chosen], x[chosen], iterations=25).win_rate)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)


EQUAL_LENGTH_BAND = float(np.log(1.1))
"""Pairs whose log length ratio is within this of 0 (lengths within about 10%) count as near equal length."""
MIN_SIDE_SHARE = 0.1
"""The length-controlled rate is read at equal length: at least this share of pairs must lie at or below equal
length, and as many at or above it, or the reading extrapolates."""


@dataclass(frozen=True)
class LengthControl:
    win_rate: float | None
    interval: list[float] | None
    coefficient: float | None
    note: str | None
    """Why there is no estimate (None when there is one)."""


def length_control(outcomes: Sequence[float], length_diff: Sequence[float], groups: Sequence[str], *,
                   seed: int = 0) -> LengthControl:
    """The length-controlled win rate with its interval, or no estimate when the data cannot identify it.

    Read at equal length, the rate is identified only when pairs lie on both sides of equal length. When (almost)
    every policy text is longer, or every one shorter, the log length ratio barely varies around a value far from
    0: the regression cannot tell the slope from the intercept, the ridge decides the answer, and its interval
    looks precise. A careful reader would not report that number, so neither do we: null, and the reason.
    """
    x = np.asarray(length_diff, dtype=float)
    if x.size == 0:
        return LengthControl(None, None, None, "no judged pair: no length-controlled rate")
    at_or_below = float(np.mean(x <= EQUAL_LENGTH_BAND))
    at_or_above = float(np.mean(x >= -EQUAL_LENGTH_BAND))
    if min(at_or_below, at_or_above) < MIN_SIDE_SHARE:
        side = "longer" if at_or_below < MIN_SIDE_SHARE else "shorter"
        share = 1.0 - min(at_or_below, at_or_above)
        return LengthControl(None, None, None,
                             f"length-controlled rate not identified: the policy's text is more than 10% {side} "
                             f"in {share:.0%} of pairs, so no data lies near equal length and the estimate would "
                             "be set by the model's form, not the data; compare at similar lengths (e.g. cap "
                             "--gen-max-tokens) to measure it")
    fit = fit_length_controlled(outcomes, x)
    low, high = bootstrap_length_controlled_ci(outcomes, x, groups, seed=seed)
    return LengthControl(fit.win_rate, [low, high], fit.length_coefficient, None)
