"""Plain gloo for verl's worker process groups on the CPU platform.

verl 0.9.1 builds the backend string `"cpu:gloo,{device}:{backend}"` (`utils/distributed.py:89`), which for the
device "cpu" is `"cpu:gloo,cpu:gloo"`: torch refuses it ("Duplicate device type cpu"). No platform method
decides that string, so this is the one place the CPU backend replaces a verl function: the replacement passes
plain "gloo" when the caller named no backend, and defers to verl's function otherwise. It is installed only on
the CPU platform, in the module that defines the function and in the worker module that imported it by name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

FUNCTION = "initialize_global_process_group_ray"
IMPORTERS = ("verl.utils.distributed", "verl.workers.engine_workers")
"""Modules holding the name verl's workers call (`engine_workers` imported it by name)."""


def _with_plain_gloo(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def initialize(timeout_second: int | None = None, backend: str | None = None) -> Any:
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    initialize.writing_rl_plain_gloo = True  # type: ignore[attr-defined]
    return initialize


def use_plain_gloo() -> None:
    """Install the replacement in every loaded module that holds verl's function (idempotent)."""
    import verl.utils.distributed  # noqa: F401  (the defining module is always patched)

    for name in IMPORTERS:
        module = sys.modules.get(name)
        function = getattr(module, FUNCTION, None) if module else None
        if function is not None and not getattr(function, "writing_rl_plain_gloo", False):
            setattr(module, FUNCTION, _with_plain_gloo(function))
