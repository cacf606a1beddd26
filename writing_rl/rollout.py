"""One finished rollout as the reward methods see it: plain data, no verl."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

VALIDATION_SPLITS = frozenset({"test", "val", "valid", "validation"})
THINK_END = "</think>"


@dataclass(frozen=True)
class RolloutSample:
    uid: str
    session_id: int
    prompt_id: str
    prompt: str
    response: str
    references: tuple[str, ...]
    """Dataset references, weakest first (empty when the row has none)."""
    criteria: str | None
    validation: bool
    global_step: int | None = None
    """verl's `global_steps` when the prompt was submitted (None outside verl's trainer)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutSample:
        """The inverse of to_dict (what crosses the Ray boundary)."""
        return cls(**{**data, "references": tuple(data["references"])})


def strip_reasoning(text: str) -> str:
    """The answer after the last `</think>`; reasoning is never judged."""
    return text.rsplit(THINK_END, 1)[-1].strip() if THINK_END in text else text.strip()


