"""`judge_backend=verl`: the judge is a generative reward model that verl hosts inside the job.

verl 0.9.1 starts the GenRM as vLLM servers on a resource pool of their own, behind one HTTP router whose
`ip:port` every reward manager receives as `reward_router_address`. Its config has traps that fail silently:
without `reward.custom_reward_function.path` verl never calls our manager (it posts `/classify` itself); with
`free_cache_engine=true` the standalone GenRM is put to sleep at start-up and never woken, so every judge call
waits forever; and colocated mode hands the reward managers no `uid`. These checks name the key to change, and
run in the reward managers, the trainer and `writing-rl preflight` alike.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from writing_rl.verl_glue.fit_problem import FitProblem

ROUTE_FUNCTION_PATH = "pkg://writing_rl.verl_glue.genrm_route"
"""A `reward.custom_reward_function.path` is what makes verl call the reward manager instead of `/classify`."""


def judge_backend(config: Any) -> str:
    return str(OmegaConf.select(config, "reward.reward_kwargs.judge_backend", default=None) or "endpoint")


def router_base_url(address: str) -> str:
    """verl's router address (`ip:port` or `[ipv6]:port`) as the judge's OpenAI base URL."""
    return f"http://{address}/v1"


def genrm_replicas(config: Any) -> int:
    rm = config.reward.reward_model
    width = int(rm.rollout.tensor_model_parallel_size) * int(rm.rollout.data_parallel_size) * int(
        rm.rollout.pipeline_model_parallel_size)
    return int(rm.n_gpus_per_node) * int(rm.nnodes) // max(1, width)


def hosting_problems(config: Any) -> list[FitProblem]:
    """Every reason the GenRM verl hosts would not serve as our judge (or would sit unused), key by key."""
    rm = config.reward.get("reward_model", None) or {}
    enabled = bool(rm.get("enable", False))
    problems: list[FitProblem] = []
    if enabled and not OmegaConf.select(config, "reward.custom_reward_function.path"):
        problems.append(FitProblem(
            "reward.reward_model.enable=true without reward.custom_reward_function.path: verl then scores every "
            "rollout itself by POSTing /classify to the reward model and never calls the writing-rl reward manager. "
            f"Set reward.custom_reward_function.path={ROUTE_FUNCTION_PATH} (the scripts do with JUDGE=verl).", True))
    if judge_backend(config) != "verl":
        if enabled:
            problems.append(FitProblem(
                "reward.reward_model.enable=true but reward.reward_kwargs.judge_backend=endpoint: the GenRM verl "
                "hosts holds its GPUs unused while judgements go to judge.base_url. Set "
                "+reward.reward_kwargs.judge_backend=verl (JUDGE=verl in the scripts), or reward.reward_model.enable="
                "false.", False))
        return problems
    if not enabled:
        return [*problems, FitProblem(
            "reward.reward_kwargs.judge_backend=verl needs the GenRM hosted by verl: set reward.reward_model.enable="
            "true, reward.reward_model.model_path and the standalone-pool keys (the scripts do with JUDGE=verl).",
            True)]
    rollout = rm.get("rollout", {}) or {}
    if rollout.get("free_cache_engine", True):
        problems.append(FitProblem(
            "reward.reward_model.rollout.free_cache_engine=true: verl puts a standalone GenRM to sleep at start-up "
            "and nothing on the streaming reward path wakes it, so every judge call would wait forever. Set "
            "reward.reward_model.rollout.free_cache_engine=False.", True))
    if int(rm.get("nnodes", 0) or 0) < 1 or int(rm.get("n_gpus_per_node", 0) or 0) < 1:
        problems.append(FitProblem(
            f"reward.reward_model.nnodes={rm.get('nnodes')} and n_gpus_per_node={rm.get('n_gpus_per_node')}: the "
            "GenRM's own pool needs at least one node with at least one GPU (GENRM_GPUS in the scripts).", True))
    else:
        tp = int(rollout.get("tensor_model_parallel_size", 1) or 1)
        gpus = int(rm.n_gpus_per_node)
        if gpus % tp:
            problems.append(FitProblem(
                f"reward.reward_model.rollout.tensor_model_parallel_size={tp} does not divide "
                f"reward.reward_model.n_gpus_per_node={gpus}: {gpus % tp} GPU(s) of the GenRM pool would sit idle "
                "(verl makes one replica per TP group). Set GENRM_TP to a divisor of GENRM_GPUS.",
                gpus < tp))
    if rollout.get("name") not in ("vllm", "sglang"):
        problems.append(FitProblem(
            f"reward.reward_model.rollout.name={rollout.get('name')!r}: verl serves a GenRM with vllm or sglang. "
            "Set reward.reward_model.rollout.name=vllm.", True))
    return problems
