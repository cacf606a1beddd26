"""Strict parsers for judge output: the last well-formed verdict of the judge's own words.

What is ignored before looking (so that text the judge merely *quotes* cannot decide):
reasoning inside <think>...</think>, fenced code blocks, inline `code`, and "double-quoted"
or “curly-quoted” spans on one line. Nothing is guessed: no lowercase, no single brackets,
no bare letters. When no well-formed verdict remains, the result is None.
"""

from __future__ import annotations

import math
import re
from enum import Enum

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_UNCLOSED_THINK = re.compile(r"<think>.*", re.DOTALL)
_FENCED = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
_VERDICT = re.compile(r"\[\[([ABC])\]\]")
_NUMBER = r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*"
_BOXED_PAIR = re.compile(r"\\boxed\{" + _NUMBER + "," + _NUMBER + r"\}")

SCORE_MIN = 0.0
SCORE_MAX = 10.0


class Verdict(str, Enum):
    """Which response the judge preferred: the first shown (A), the second (B), or neither (TIE)."""

    A = "A"
    B = "B"
    TIE = "C"


def judge_own_words(text: str) -> str:
    """The judge's output without reasoning blocks, code and quoted spans."""
    text = _THINK.sub(" ", text)
    text = _UNCLOSED_THINK.sub(" ", text)  # a reasoning block cut off by max_tokens
    text = _FENCED.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    return _QUOTED.sub(" ", text)


def parse_verdict(text: str) -> Verdict | None:
    """The last `[[A]]`, `[[B]]` or `[[C]]` (tie) in the judge's own words, else None."""
    matches = _VERDICT.findall(judge_own_words(text))
    return Verdict(matches[-1]) if matches else None


def parse_scores(text: str) -> tuple[float, float] | None:
    r"""The last well-formed `\boxed{score_a, score_b}` with both scores in [0, 10], else None.

    A box with a score out of range or not a finite number is not well-formed and is skipped.
    """
    for match in reversed(list(_BOXED_PAIR.finditer(judge_own_words(text)))):
        a, b = float(match.group(1)), float(match.group(2))
        if all(math.isfinite(x) and SCORE_MIN <= x <= SCORE_MAX for x in (a, b)):
            return a, b
    return None


def verdict_from_scores(scores: tuple[float, float] | None) -> Verdict | None:
    """Higher score wins; equal scores are a tie."""
    if scores is None:
        return None
    a, b = scores
    return Verdict.A if a > b else Verdict.B if b > a else Verdict.TIE
