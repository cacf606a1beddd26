"""Find `+key=value` overrides that verl does not know: Hydra appends any key with `+`, and verl ignores keys
it does not read, so a misspelt `+actor_rollout_ref.rollout.temprature=0.7` would train with the default."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from writing_rl.verl_glue.config import compose_trainer_config

OUR_NAMESPACES = ("reward.reward_kwargs", "algorithm.brpo")
"""Keys only writing-rl reads (and checks itself)."""


def _known_fields(node: Any) -> set[str]:
    """Fields of the dataclass verl builds from this config node (`_target_`), which YAML may not list."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if not target:
        return set()
    try:
        return {f.name for f in dataclasses.fields(get_class(target))}
    except (ImportError, TypeError, ValueError):
        return set()


def unknown_added_keys(overrides: Sequence[str]) -> list[tuple[str, bool]]:
    """(problem, certain) per `+key` whose parent exists in verl's config but does not have that key. Certain
    when the parent is built into a verl dataclass (the key cannot be read); free-form sections such as `data`
    may have readers of extra keys, so those are only suspicious."""
    defaults = compose_trainer_config([])
    problems = []
    for override in overrides:
        if not override.startswith("+") or override.startswith("++") or "=" not in override:
            continue
        key = override[1:].split("=", 1)[0]
        if key.startswith(OUR_NAMESPACES):
            continue
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(defaults, parent_key) if parent_key else defaults
        if not isinstance(parent, DictConfig) or leaf in parent:
            continue
        fields = _known_fields(parent)
        if leaf in fields:
            continue
        guess = difflib.get_close_matches(leaf, sorted(set(parent.keys()) | fields), n=1)
        hint = f"; did you mean {parent_key}.{guess[0]}?" if guess else ""
        certain = bool(fields)
        problems.append((f"+{key}: verl has no such key, so the value would be ignored{hint}" if certain else
                         f"+{key}: not in verl's config for {parent_key or 'the top level'}; fine only if your own "
                         f"code reads it{hint}", certain))
    return problems
