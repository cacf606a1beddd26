"""A dress rehearsal of a training script on this machine's CPU: the script's exact verl overrides (read as
`writing-rl preflight` reads them), a small model, small sizes, and every file the job writes under one folder of
its own. The job is verl's real `main_ppo` -> `fit()`: FSDP2 actor, log-prob recompute, weight sync into the
`hf_cpu` rollout, the reward loop with our managers and the judge, checkpoints.

Two parts of a GPU job cannot run on a CPU in verl 0.9.1, and the rehearsal says so instead of pretending:
- a critic (PPO with GAE): verl loads the value model with `attn_implementation="flash_attention_2"` hard-coded
  (`verl/utils/model.py`, `load_valuehead_model`), and flash-attn needs CUDA;
- a reference model (KL loss or KL in the reward): verl shards it with `CPUOffloadPolicy(pin_memory=True)`
  (`verl/workers/engine/fsdp/transformer_impl.py`), and pinned memory needs an accelerator. The rehearsal turns
  the KL terms off and prints that it did.
"""

from __future__ import annotations

import json
import mmap
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from writing_rl.cpu.job import CpuJobShape, cpu_environment, cpu_overrides
from writing_rl.cpu.job_log import TRAINING, JobError, first_error, milestone

REHEARSAL_KEY_ENV = "WRITING_RL_REHEARSAL_KEY"
"""With the local judge, the job reads its API key from this variable: a random value, then searched for in every
file the job wrote (a key must never reach one)."""
LOCAL_JUDGE_MODEL = "test-judge"
JUDGE_METHODS = ("writing_rl", "brpo")


class RehearsalError(Exception):
    """The rehearsal cannot run or failed; `part` names what to fix (model, data, judge, config, critic, ...)."""

    def __init__(self, part: str, message: str):
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


@dataclass(frozen=True)
class RehearsalRequest:
    script: Path
    overrides: list[str]
    out_dir: Path
    shape: CpuJobShape = field(default_factory=CpuJobShape)
    model: Path | None = None
    """A local HF folder; None: a tiny random model (with the policy's tokenizer when its folder is local)."""
    local_judge_url: str | None = None
    """The loopback judge's base URL (`--judge local`); None: the judge the script names."""


@dataclass
class PreparedJob:
    overrides: list[str]
    own_overrides: list[str]
    """The rehearsal's additions to the script's overrides (they are not the user's to check)."""
    environment: dict[str, str]
    out_dir: Path
    model: Path
    method: str | None
    notes: list[str] = field(default_factory=list)
    key_env: str | None = None
    check_kind: str | None = None
    """`genrm-rl` when the script declares GenRM checks for preflight (see `writing_rl.preflight.genrm`)."""

    @property
    def log_path(self) -> Path:
        return self.out_dir / "job.log"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"


@contextmanager
def environment_with(updates: dict[str, str]) -> Iterator[None]:
    """This process's environment with `updates`, as it was afterwards."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def new_out_dir(script: Path, root: Path = Path("outputs/rehearse")) -> Path:
    return root / f"{time.strftime('%Y%m%d-%H%M%S')}-{script.stem}"


def _compose(overrides: list[str]) -> Any:
    from writing_rl.verl_glue.config import compose_trainer_config

    try:
        return compose_trainer_config(overrides)
    except Exception as exc:  # Hydra's errors name the override
        raise RehearsalError("config", f"verl's config does not accept the script's overrides: {exc}") from exc


def _script_overrides(request: RehearsalRequest) -> tuple[str | None, list[str]]:
    """The script's overrides as it would pass them, paths into the user's RUN_DIR included (the rehearsal then
    overrides those keys: it reads the user's index but writes only its own folder)."""
    from writing_rl.preflight.genrm import declared_kind
    from writing_rl.preflight.training import script_overrides

    env = {}
    if os.environ.get("JUDGE") == "verl":
        if not request.local_judge_url:
            raise RehearsalError("judge", "JUDGE=verl hosts the judge model with vLLM on the job's GPUs, which a "
                                          "CPU rehearsal cannot start: rehearse with --judge local")
        env["JUDGE"] = "endpoint"  # the loopback judge stands in for the GenRM verl would host on GPUs
    try:
        with environment_with(env):
            return declared_kind(script_overrides(request.script, request.overrides))
    except (FileNotFoundError, RuntimeError) as exc:
        raise RehearsalError("script", str(exc)) from exc


def _choose_model(request: RehearsalRequest, policy_path: str) -> tuple[Path, str]:
    from writing_rl.models.tiny import write_tiny_model

    if request.model is not None:
        folder = request.model.expanduser()
        if not (folder / "config.json").is_file():
            raise RehearsalError("model", f"{folder} is not a local model folder (no config.json): give a folder "
                                          "written by transformers' save_pretrained, e.g. `writing-rl model smollm2`")
        return folder.resolve(), f"model {folder}"
    policy = Path(policy_path).expanduser()
    target = request.out_dir / "model"
    if (policy / "config.json").is_file():
        try:
            write_tiny_model(target, tokenizer_dir=policy)
        except Exception as exc:
            raise RehearsalError("model", f"cannot read the tokenizer of {policy}: {exc}") from exc
        return target.resolve(), f"tiny random model with the tokenizer of {policy}"
    write_tiny_model(target)
    return target.resolve(), f"tiny random model (GPT-2 tokenizer); the policy {policy_path} is not a local folder"


def _prepare_index(config: Any, run_dir: Path) -> str:
    """The rehearsal's own copy of the curriculum index: the user's rungs when their index exists, else rung 0."""
    from writing_rl.curriculum.index_creation import create_index
    from writing_rl.curriculum.index_file import index_path
    from writing_rl.verl_glue.config import config_paths
    from writing_rl.verl_glue.settings import reward_settings_from_config

    settings = reward_settings_from_config(config)
    theirs = settings.index_path()
    ours = index_path(run_dir, settings.experiment)
    ours.parent.mkdir(parents=True, exist_ok=True)
    if theirs.is_file() and theirs.resolve() != ours.resolve():
        shutil.copyfile(theirs, ours)
    create_index([Path(p) for p in config_paths(config.data.train_files)], settings.experiment, run_dir, False)
    return f"index {ours} (from {theirs})" if theirs.is_file() else f"index {ours} (new, every prompt at rung 0)"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def prepare(request: RehearsalRequest) -> PreparedJob:
    """Everything before verl starts: read the script, choose the model, write the overrides and the index."""
    from verl.trainer.ppo.utils import need_critic

    out = request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    run_dir = (out / "run").resolve()
    kind, base = _script_overrides(request)
    if kind == "genrm-sft":
        raise RehearsalError("script", "SFT scripts are not rehearsed: verl's SFT trainer runs under torchrun and "
                                       "needs NCCL; check it with `writing-rl preflight`")
    config = _compose(base)
    if need_critic(config):
        raise RehearsalError("critic", "PPO with a critic (algorithm.adv_estimator=gae) cannot run on a CPU: verl "
                                       "0.9.1 loads the value model with flash_attention_2 hard-coded "
                                       "(verl/utils/model.py, load_valuehead_model). Rehearse the critic-free "
                                       "variant (e.g. ALGO=grpo ROLLOUT_N=4) and check this one with "
                                       "`writing-rl preflight`")
    method = str(config.reward.reward_manager.name)
    method = method if method in JUDGE_METHODS else None
    model, model_note = _choose_model(request, str(config.actor_rollout_ref.model.path))
    notes = [model_note]
    shape = request.shape
    prompt_length = shape.max_prompt_length or int(config.data.max_prompt_length)
    own = [*cpu_overrides(shape, out.resolve(), prompt_length=prompt_length),
           f"actor_rollout_ref.model.path={model}"]
    if config.actor_rollout_ref.actor.use_kl_loss or config.algorithm.use_kl_in_reward:
        own += ["actor_rollout_ref.actor.use_kl_loss=False", "algorithm.use_kl_in_reward=False"]
        notes.append("KL loss off: verl 0.9.1 builds the reference model with pinned memory, which needs an "
                     "accelerator (the rest of the job is rehearsed as written)")
    for key, folder in (("validation_data_dir", "validation"), ("rollout_data_dir", "rollouts")):
        if config.trainer.get(key):
            own.append(f"trainer.{key}={(out / folder).resolve()}")
    environment = cpu_environment(out.resolve())
    key_env = None
    if method is not None:
        kwargs = config.reward.reward_kwargs
        own.append(f"++reward.reward_kwargs.run_dir={run_dir}")
        if str(kwargs.judge.get("cache_path", "none")).lower() not in ("none", ""):
            own.append(f"++reward.reward_kwargs.judge.cache_path={run_dir / 'judge_cache.sqlite'}")
        if request.local_judge_url:
            key_env = REHEARSAL_KEY_ENV
            environment[key_env] = f"rehearsal-{secrets.token_hex(12)}"
            own += [f"++reward.reward_kwargs.judge.base_url={request.local_judge_url}",
                    f"++reward.reward_kwargs.judge.model={LOCAL_JUDGE_MODEL}",
                    f"++reward.reward_kwargs.judge.api_key_env={key_env}"]
            notes.append(f"judge: the local loopback judge at {request.local_judge_url}")
        else:
            key_env = str(kwargs.judge.get("api_key_env") or "") or None
            notes.append(f"judge: the script's, {kwargs.judge.get('base_url')} ({kwargs.judge.get('model')})")
        if method == "writing_rl":
            notes.append(_prepare_index(config, run_dir))
    own = [o for o in own if _key(o) not in {_key(u) for u in request.overrides}]  # what the user set wins
    overrides = [*base, *own]
    (out / "overrides.txt").write_text("\n".join(overrides) + "\n")
    return PreparedJob(overrides=overrides, own_overrides=own, environment=environment, out_dir=out, model=model,
                       method=method, notes=notes, key_env=key_env, check_kind=kind)


PART_OF_CHECK = (("data.", "data"), ("train/validation split", "data"), ("prompt lengths", "data"),
                 ("both orders", "data"), ("batch sizes", "config"), ("judge", "judge"), ("API key", "judge"),
                 ("prompt files", "judge"), ("reward", "reward"), ("index", "index"), ("plugin", "install"),
                 ("entry point", "install"), ("verl installed", "install"), ("verl model config", "model"))
"""Preflight check names (by prefix) -> the part of the job a failure concerns; anything else is the config."""


def part_of_check(name: str) -> str:
    return next((part for prefix, part in PART_OF_CHECK if name.startswith(prefix)), "config")


def preflight(job: PreparedJob) -> None:
    """`writing-rl preflight`'s checks on the rehearsal's own config (they print as they run); the first failure
    is raised with the part it belongs to."""
    from writing_rl.preflight.genrm import KIND_PREFIX, genrm_preflight
    from writing_rl.preflight.training import Preflight

    with environment_with(job.environment):  # the local judge's key variable, as the job will see it
        results = genrm_preflight([f"{KIND_PREFIX}{job.check_kind}", *job.overrides]) if job.check_kind else None
        if results is None:
            results = Preflight(job.overrides, known_added=job.own_overrides).run()
    failed = [c for c in results if not c.ok]
    if failed:
        first = failed[0]
        raise RehearsalError(part_of_check(first.name), f"{first.name}: {first.detail}")


@dataclass
class JobResult:
    returncode: int
    steps: list[dict[str, Any]]
    startup_s: float
    wall_s: float
    error: JobError | None


@contextmanager
def _job_process(job: PreparedJob) -> Iterator[subprocess.Popen[str]]:
    """verl's `main_ppo` in its own process group (its local Ray cluster included), stopped on any exit."""
    env = {**os.environ, **job.environment}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen([sys.executable, "-m", "verl.trainer.main_ppo", *job.overrides], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                               start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                os.killpg(process.pid, sig)
                try:
                    process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue


class _MetricsTail:
    """The steps verl's file logger appended since the last call: only new complete lines are read (the job prints
    thousands of lines, and this is asked after each)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def new_steps(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def run_job(job: PreparedJob, on_milestone: Callable[[str], None] = lambda label: None,
            on_step: Callable[[dict[str, Any]], None] = lambda step: None) -> JobResult:
    """Run the job, calling back as start-up milestones pass and as each step's metrics are logged."""
    started = time.monotonic()
    startup_s = 0.0
    steps: list[dict[str, Any]] = []
    lines: list[str] = []
    metrics = _MetricsTail(job.metrics_path)

    def collect() -> None:
        for step in metrics.new_steps():
            steps.append(step)
            on_step(step)

    with job.log_path.open("w") as log, _job_process(job) as process:
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            lines.append(line)
            label = milestone(line)
            if label:
                if label == TRAINING:
                    startup_s = time.monotonic() - started
                on_milestone(label)
            collect()
        returncode = process.wait()
    collect()
    error = first_error(lines) if returncode != 0 else None
    if returncode != 0 and error is None:
        error = JobError("trainer", f"verl exited with code {returncode}; see {job.log_path}")
    return JobResult(returncode, steps, startup_s, time.monotonic() - started, error)


def actor_weights(job: PreparedJob, step: int) -> dict[str, Any]:
    """The actor's weights in the checkpoint of `step` (one rank), as full tensors a transformers model loads."""
    import torch

    state = torch.load(job.out_dir / f"checkpoints/global_step_{step}/actor/model_world_size_1_rank_0.pt",
                       map_location="cpu", weights_only=False)
    return {k: (v.full_tensor() if hasattr(v, "full_tensor") else v) for k, v in state.items()}


ROLLOUT_GAP_KEYS = ("rollout_corr/log_ppl_diff_max", "rollout_corr/log_ppl_diff_min")


def rollout_actor_gap(metrics: dict[str, Any]) -> float | None:
    """verl's largest per-sequence |mean log-prob under the rollout - under the actor| for a step's rollouts; after a
    weight sync in fp32 both sides agree to ~1e-6. Log space: verl's probability-difference metric cannot tell a
    small model's tiny token probabilities apart."""
    values = [metrics.get(k) for k in ROLLOUT_GAP_KEYS]
    if not all(isinstance(v, int | float) for v in values):
        return None
    return max(abs(float(v)) for v in values)


def files_holding_key(job: PreparedJob) -> list[Path]:
    """Files under the rehearsal's folder that contain the judge key's value (there must be none)."""
    value = os.environ.get(job.key_env or "") or job.environment.get(job.key_env or "")
    if not value or len(value) < 8:
        return []
    needle = value.encode()
    return [p for p in job.out_dir.rglob("*") if p.is_file() and _contains(p, needle)]


def _contains(path: Path, needle: bytes) -> bool:
    """Searched through a memory map: checkpoints are hundreds of MB, and none needs to be read into memory."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return mapped.find(needle) != -1
