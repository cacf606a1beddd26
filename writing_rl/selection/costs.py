"""US dollar costs from token counts and prices per million tokens, where a price not given is unknown."""

from __future__ import annotations


def usd_cost(prompt_tokens: int, completion_tokens: int, usd_per_mtok_in: float | None,
             usd_per_mtok_out: float | None) -> float | None:
    """US dollars, or None when a price that the tokens need was not given (unknown is not free)."""
    total = 0.0
    for tokens, price in ((prompt_tokens, usd_per_mtok_in), (completion_tokens, usd_per_mtok_out)):
        if tokens and price is None:
            return None
        total += tokens * (price or 0.0) / 1e6
    return total


def total_usd(*costs: float | None) -> float | None:
    """The sum, rounded for reports; None when any part is unknown."""
    return None if any(c is None for c in costs) else round(sum(costs), 6)  # type: ignore[arg-type]


def usd_text(cost: float | None, digits: int = 2) -> str:
    return f"${cost:.{digits}f}" if cost is not None else "$? (no price given)"
