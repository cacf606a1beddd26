"""Reward settings read from verl's config: `+reward.reward_kwargs.*`, defaults in one place.

    +reward.reward_kwargs.writing_rl.position=position-disadvantage   (…-advantage | both | random)
    +reward.reward_kwargs.writing_rl.promotion=any                    (majority | win_rate>=X)
    +reward.reward_kwargs.writing_rl.reward_win=1.0 / reward_tie=0.5 / reward_loss=0.0
    +reward.reward_kwargs.run_dir=running_file      (the run directory: index_<experiment>.json and the judge cache;
                                                     give it absolute, the scripts pass $PWD/running_file)

    +reward.reward_kwargs.judge_backend=endpoint   (verl: the judge is the GenRM verl hosts, reached through its router)
    +reward.reward_kwargs.judge.base_url=...   (any JudgeSettings field; JUDGE_* env vars as fallback)
    +reward.reward_kwargs.judge.cache_path=...  (default <run_dir>/judge_cache_<experiment>.sqlite; "none" disables)
    +reward.reward_kwargs.brpo.orders=both     (both | candidate_first | candidate_second)
    +reward.reward_kwargs.brpo.votes=1
    +reward.reward_kwargs.brpo.seed=0
    +reward.reward_kwargs.brpo.group_timeout_s=900
    +reward.reward_kwargs.brpo.template=genrm
    +reward.reward_kwargs.watch.length_growth=1.5   (reward-hacking watch thresholds: writing_rl.watch.WatchThresholds)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from writing_rl.brpo.judging import ORDERS
from writing_rl.brpo.skew import DEFAULT_SKEW_THRESHOLD
from writing_rl.curriculum.index_file import index_path
from writing_rl.judge.settings import JudgeSettings
from writing_rl.verl_glue.config import config_paths
from writing_rl.watch import WatchThresholds

JUDGE_BACKENDS = ("endpoint", "verl")
"""`endpoint`: any OpenAI-compatible server named by judge.base_url; `verl`: the generative reward model verl
hosts in the job (reward.reward_model.*), reached through the router address verl hands the reward managers."""


@dataclass(frozen=True)
class BrpoSettings:
    orders: str = "both"
    votes: int = 1
    seed: int = 0
    group_timeout_s: float = 900.0
    """A group still incomplete this long after its first rollout is judged with what arrived."""
    template: str = "genrm"
    group_size: int = 0
    """0: rollout.n. Applies to training groups only; validation groups have rollout.val_kwargs.n members."""

    def __post_init__(self) -> None:
        if self.orders not in ORDERS:
            raise ValueError(f"reward_kwargs.brpo.orders={self.orders!r}: must be one of {sorted(ORDERS)}")
        if self.votes < 1 or self.group_timeout_s <= 0 or self.group_size < 0:
            raise ValueError("reward_kwargs.brpo: votes must be >= 1, group_timeout_s > 0, group_size >= 0")


@dataclass(frozen=True)
class WritingRLSettings:
    position: str = "position-disadvantage"
    promotion: str = "any"
    reward_win: float = 1.0
    reward_tie: float = 0.5
    reward_loss: float = 0.0
    template: str = "pairwise"
    criteria_template: str = "pairwise_criteria"
    seed: int = 0
    group_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        from writing_rl.curriculum.schedule import PromotionRule
        from writing_rl.curriculum.scorer import POSITIONS

        if self.position not in POSITIONS:
            raise ValueError(f"reward_kwargs.writing_rl.position={self.position!r}: must be one of {POSITIONS}")
        PromotionRule.parse(self.promotion)
        if self.group_timeout_s <= 0:
            raise ValueError("reward_kwargs.writing_rl.group_timeout_s must be > 0")


@dataclass(frozen=True)
class RewardSettings:
    experiment: str
    judge: JudgeSettings
    method: str = "writing_rl"
    """The reward manager's name: `writing_rl` or `brpo`."""
    run_dir: str = os.path.abspath("running_file")
    brpo: BrpoSettings = field(default_factory=BrpoSettings)
    writing_rl: WritingRLSettings = field(default_factory=WritingRLSettings)
    rollout_n: int = 1
    val_n: int = 1
    train_files: tuple[str, ...] = ()
    train_batch_size: int = 1
    skew_threshold: float = DEFAULT_SKEW_THRESHOLD
    """`algorithm.brpo.skew_threshold`, read here too so the coordinator's metrics match the estimator."""
    watch: WatchThresholds = field(default_factory=WatchThresholds)
    judge_backend: str = "endpoint"

    def __post_init__(self) -> None:
        if self.judge_backend not in JUDGE_BACKENDS:
            raise ValueError(f"reward.reward_kwargs.judge_backend={self.judge_backend!r}: must be one of "
                             f"{list(JUDGE_BACKENDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "judge": dict(self.judge.public_dict()), "method": self.method,
                "run_dir": self.run_dir, "judge_backend": self.judge_backend,
                "brpo": asdict(self.brpo), "writing_rl": asdict(self.writing_rl), "rollout_n": self.rollout_n,
                "val_n": self.val_n, "train_files": list(self.train_files), "train_batch_size": self.train_batch_size,
                "skew_threshold": self.skew_threshold, "watch": asdict(self.watch)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardSettings:
        judge = {k: v for k, v in data["judge"].items() if k in JudgeSettings.field_names()}
        return cls(experiment=data["experiment"], judge=JudgeSettings(**judge), method=data["method"],
                   run_dir=data["run_dir"],
                   brpo=BrpoSettings(**data["brpo"]), writing_rl=WritingRLSettings(**data["writing_rl"]),
                   rollout_n=data["rollout_n"], val_n=data["val_n"], train_files=tuple(data["train_files"]),
                   train_batch_size=data["train_batch_size"], skew_threshold=data["skew_threshold"],
                   watch=WatchThresholds(**data.get("watch", {})),
                   judge_backend=data["judge_backend"])

    def coordinator_name(self) -> str:
        return f"writing_rl_coordinator:{self.experiment}"

    def index_path(self) -> Path:
        return index_path(self.run_dir, self.experiment)


def _section(kwargs: dict[str, Any], name: str, allowed: list[str]) -> dict[str, Any]:
    values = dict(kwargs.get(name) or {})
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"reward.reward_kwargs.{name}: unknown key(s) {unknown}; known: {sorted(allowed)}")
    return values


def reward_settings_from_config(config: DictConfig) -> RewardSettings:
    """Everything the reward path needs, validated once, from the whole trainer config."""
    raw = config.reward.get("reward_kwargs", None)
    kwargs: dict[str, Any] = OmegaConf.to_container(raw, resolve=True) if raw is not None else {}  # type: ignore
    known = {"judge", "judge_backend", "brpo", "writing_rl", "experiment", "run_dir", "watch"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"reward.reward_kwargs: unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
    backend = str(kwargs.get("judge_backend") or "endpoint")
    experiment = str(kwargs.get("experiment") or config.trainer.get("experiment_name") or "default")
    run_dir = os.path.abspath(str(kwargs.get("run_dir") or "running_file"))
    judge_values = _section(kwargs, "judge", JudgeSettings.field_names())
    judge_values["cache_path"] = _judge_cache_path(judge_values.get("cache_path", ""), run_dir, experiment)
    if backend == "verl":
        judge_values["model"] = _verl_served_model(config, judge_values.get("model"))
    judge = JudgeSettings.from_env(judge_values)
    brpo = BrpoSettings(**_section(kwargs, "brpo", [f.name for f in fields(BrpoSettings)]))
    writing = WritingRLSettings(**_section(kwargs, "writing_rl", [f.name for f in fields(WritingRLSettings)]))
    watch = WatchThresholds(**_section(kwargs, "watch", [f.name for f in fields(WatchThresholds)]))
    train_files = config_paths(config.data.get("train_files"))
    brpo_algorithm = config.algorithm.get("brpo", None) or {}
    return RewardSettings(experiment=experiment, judge=judge, method=str(config.reward.reward_manager.name),
                          run_dir=run_dir, brpo=brpo, writing_rl=writing, watch=watch,
                          rollout_n=_int_setting(config, "actor_rollout_ref.rollout.n"),
                          val_n=_int_setting(config, "actor_rollout_ref.rollout.val_kwargs.n"),
                          train_files=tuple(os.path.abspath(f) for f in train_files),
                          train_batch_size=_int_setting(config, "data.train_batch_size"),
                          skew_threshold=float(brpo_algorithm.get("skew_threshold", DEFAULT_SKEW_THRESHOLD)),
                          judge_backend=backend)


def _verl_served_model(config: DictConfig, explicit: object) -> str:
    """verl serves its GenRM under `reward.reward_model.model_path`, verbatim: any other name is a 404 that verl's
    router turns into a bare HTTP 500, so a different judge.model is refused here rather than failing every call."""
    served = OmegaConf.select(config, "reward.reward_model.model_path")
    if not served:
        raise ValueError("reward.reward_kwargs.judge_backend=verl needs reward.reward_model.model_path (the GenRM "
                         "that verl hosts; the scripts take it from GENRM_PATH)")
    if explicit not in (None, "", served):
        raise ValueError(f"reward.reward_kwargs.judge.model={explicit!r}: with judge_backend=verl the GenRM is "
                         f"served under reward.reward_model.model_path={served!r}; drop judge.model")
    return str(served)


def _int_setting(config: DictConfig, key: str) -> int:
    value = OmegaConf.select(config, key)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={value!r} must be an integer") from None


def _judge_cache_path(value: object, run_dir: str, experiment: str) -> str | None:
    """Absolute, so that no Ray worker's working directory decides where caches land; "none" disables."""
    text = "" if value is None else str(value).strip()
    if text.lower() in ("none", "null", "off"):
        return None
    if not text:
        return os.path.join(run_dir, f"judge_cache_{experiment}.sqlite")
    return text if os.path.isabs(text) else os.path.join(run_dir, text)
