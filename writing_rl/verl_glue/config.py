"""Compose verl's own trainer config (ppo_trainer.yaml) with Hydra, exactly as `main_ppo` would."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig


def verl_config_dir() -> Path:
    import verl.trainer

    return Path(verl.trainer.__file__).resolve().parent / "config"


def config_paths(value: Any) -> list[str]:
    """`data.train_files` / `data.val_files`: one path or a list of paths, as verl accepts them."""
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def compose_trainer_config(overrides: Sequence[str], config_name: str = "ppo_trainer") -> DictConfig:
    with initialize_config_dir(config_dir=str(verl_config_dir()), version_base=None):
        return compose(config_name=config_name, overrides=list(overrides))
