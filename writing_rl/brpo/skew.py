"""The skew filter: a group whose reference was an outlier carries no useful signal."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_SKEW_THRESHOLD = 0.6


def group_is_skewed(rewards: Sequence[float], threshold: float = DEFAULT_SKEW_THRESHOLD) -> bool:
    """|sum r| / G > threshold, with G the group size (reference included). threshold >= 1 disables."""
    if not rewards or threshold >= 1.0:
        return False
    return abs(sum(rewards)) / len(rewards) > threshold
