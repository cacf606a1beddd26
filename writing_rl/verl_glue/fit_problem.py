"""One reason a composed verl config cannot work with our reward managers (the compatibility and GenRM-hosting
checks both report them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitProblem:
    message: str
    fatal: bool
    """True: the job would hang or fail, so it is refused; False: a warning."""
