"""Strict parsers for judge output: the last well-formed verdict of the judge's own words.

What is ignored before looking (so that text the judge merely *quotes* cannot decide):
reasoning inside <think>...</think>, fenced code blocks, inline `code`, and "double-quoted"
or “curly-quoted” spans on one line. Nothing is guessed: no lowercase, no single brackets,
no bare letters. When no well-formed verdict remains, the result is None.

A `<think>` that is never closed is reasoning cut off by max_tokens, and what follows it is
dropped; but when that leaves no verdict and the `<think>` does not open the answer, the judge was
only mentioning the tag ("Response A literally writes <think> ..."), and the text after it counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from enum import Enum

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_UNCLOSED_THINK = re.compile(r"<think>.*", re.DOTALL)
_OPENING_THINK = re.compile(r"\s*<think>")
_FENCED = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
_VERDICT = re.compile(r"\[\[([ABC])\]\]")
_NUMBER = r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*"
_BOXED_PAIR = re.compile(r"\\boxed\{" + _NUMBER + "," + _NUMBER + r"\}")
_BOXED_ONE = re.compile(r"\\boxed\{" + _NUMBER + r"\}")

SCORE_MIN = 0.0
SCORE_MAX = 10.0


class Verdict(str, Enum):
    """Which response the judge preferred: the first shown (A), the second (B), or neither (TIE)."""

    A = "A"
    B = "B"
    TIE = "C"


def judge_own_words(text: str, *, keep_literal_think: bool = False) -> str:
    """The judge's output without reasoning blocks, code and quoted spans.

    `keep_literal_think` keeps the text after an unclosed `<think>` that does not open the answer.
    """
    text = _THINK.sub(" ", text)
    if not keep_literal_think or _OPENING_THINK.match(text):
        text = _UNCLOSED_THINK.sub(" ", text)  # a reasoning block cut off by max_tokens
    text = _FENCED.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    return _QUOTED.sub(" ", text)


def _readings(text: str) -> Iterator[str]:
    """The judge's own words, then (only if needed) the reading that takes a `<think>` literally."""
    yield judge_own_words(text)
    if "<think>" in text:
        yield judge_own_words(text, keep_literal_think=True)


def parse_verdict(text: str) -> Verdict | None:
    """The last `[[A]]`, `[[B]]` or `[[C]]` (tie) in the judge's own words, else None."""
    for reading in _readings(text):
        matches = _VERDICT.findall(reading)
        if matches:
            return Verdict(matches[-1])
    return None


def parse_scores(text: str) -> tuple[float, float] | None:
    r"""The last well-formed `\boxed{score_a, score_b}` with both scores in [0, 10], else None.

    A box with a score out of range or not a finite number is not well-formed and is skipped.
    """
    for reading in _readings(text):
        for match in reversed(list(_BOXED_PAIR.finditer(reading))):
            a, b = float(match.group(1)), float(match.group(2))
            if all(math.isfinite(x) and SCORE_MIN <= x <= SCORE_MAX for x in (a, b)):
                return a, b
    return None


def parse_score(text: str) -> float | None:
    r"""The last well-formed `\boxed{score}` with the score in [0, 10], else None (one response, one criterion)."""
    for reading in _readings(text):
        for match in reversed(list(_BOXED_ONE.finditer(reading))):
            value = float(match.group(1))
            if math.isfinite(value) and SCORE_MIN <= value <= SCORE_MAX:
                return value
    return None


def verdict_from_scores(scores: tuple[float, float] | None) -> Verdict | None:
    """Higher score wins; equal scores are a tie."""
    if scores is None:
        return None
    a, b = scores
    return Verdict.A if a > b else Verdict.B if b > a else Verdict.TIE
