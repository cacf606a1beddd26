"""JUDGE=verl: the judge hosted by verl inside the job, reached through verl's own reward router.

verl's GPU half (vLLM servers of the GenRM) is played by the loopback judge behaving as vLLM does (404 for a model
name it does not serve, 400 beyond max_model_len, /tokenize); everything between it and our coordinator is verl's
real code: its `NaiveRouter` process, its `RewardLoopWorker` actors with `reward.reward_model.enable=True`, its
config composition and `validate_config`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from writing_rl.brpo.group import choose_reference
from writing_rl.judge.settings import JudgeSettings
from writing_rl.preflight.training import script_overrides
from writing_rl.testing.cli_runner import REPO, call_cli
from writing_rl.testing.reward_loop import reward_workers_behind_router, rollout_data, verl_router
from writing_rl.testing.server_process import JudgeServerProcess
from writing_rl.testing.trainer_on_cpu import tiny_model_dir
from writing_rl.verl_glue.compatibility import trainer_fit_problems
from writing_rl.verl_glue.config import compose_trainer_config
from writing_rl.verl_glue.router_client import REPEATS_BEFORE_DIAGNOSIS, RouterJudgeClient
from writing_rl.verl_glue.settings import reward_settings_from_config

SCRIPTS = ("scripts/train_brpo.sh", "scripts/train_writing_rl.sh")
EXAMPLES = REPO / "examples" / "writing_prompts.jsonl"
G = 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The policy and the judge model alike: a local folder with a config.json and a tokenizer."""
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    assert call_cli("data", "build", str(EXAMPLES), "--out-dir", str(out), "--test-size", "2").returncode == 0
    return out


@pytest.fixture(scope="module")
def genrm() -> Iterator[JudgeServerProcess]:
    """The GenRM's vLLM server, as far as a reward manager can tell."""
    with JudgeServerProcess(mode="scores") as server:
        yield server


@pytest.fixture
def router(genrm: JudgeServerProcess) -> Iterator[str]:
    with verl_router([genrm.base_url.removesuffix("/v1")]) as address:
        yield address


def script_env(data: Path, model_dir: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"JUDGE": "verl", "GENRM_PATH": model_dir, "MODEL_PATH": model_dir,
            "TRAIN_FILE": str(data / "train.parquet"), "VAL_FILE": str(data / "test.parquet"),
            "RUN_DIR": str(tmp_path / "run"), "EXPERIMENT_NAME": "exp", "N_GPUS": "8", "NNODES": "1", **extra}


def composed(script: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, *extra: str) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return compose_trainer_config(script_overrides(REPO / script, list(extra)))


@pytest.mark.parametrize("script", SCRIPTS)
def test_shipped_judge_verl_config_passes_verl_and_our_checks(script: str, data: Path, model_dir: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    config = composed(script, script_env(data, model_dir, tmp_path), monkeypatch)
    assert trainer_fit_problems(config) == []
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    reward_model = omega_conf_to_dataclass(config.reward.reward_model)
    assert reward_model.enable and reward_model.enable_resource_pool and not reward_model.rollout.free_cache_engine
    assert get_custom_reward_fn(config) is not None  # verl resolves the pkg:// path that routes to our manager
    assert (config.trainer.n_gpus_per_node, config.reward.reward_model.n_gpus_per_node) == (6, 2)
    settings = reward_settings_from_config(config)
    assert (settings.judge_backend, settings.judge.model, settings.judge.max_concurrency) == ("verl", model_dir, 128)


TRAPS = [
    ("reward.reward_model.enable=False", "judge_backend=verl needs the GenRM hosted by verl"),
    ("reward.custom_reward_function.path=null", "POSTing /classify"),
    ("reward.reward_model.rollout.free_cache_engine=True", "reward.reward_model.rollout.free_cache_engine=False"),
    ("reward.reward_model.nnodes=0", "GENRM_GPUS"),
    ("reward.reward_model.rollout.tensor_model_parallel_size=4", "Set GENRM_TP to a divisor of GENRM_GPUS"),
    ("reward.reward_model.enable_resource_pool=False", "no overlap with generation"),
]


@pytest.mark.parametrize(("override", "advice"), TRAPS, ids=[t[0].split("=")[0].split(".")[-1] for t in TRAPS])
def test_each_trap_is_refused_naming_the_key(override: str, advice: str, data: Path, model_dir: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = composed("scripts/train_brpo.sh", script_env(data, model_dir, tmp_path), monkeypatch, override)
    fatal = [p.message for p in trainer_fit_problems(config) if p.fatal]
    assert any(advice in message for message in fatal), fatal


def test_a_judge_model_other_than_the_served_name_is_refused(data: Path, model_dir: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = composed("scripts/train_brpo.sh", script_env(data, model_dir, tmp_path), monkeypatch,
                      "+reward.reward_kwargs.judge.model=genrm")
    with pytest.raises(ValueError, match=r"reward\.reward_model\.model_path=.*drop judge\.model"):
        reward_settings_from_config(config)


@pytest.mark.parametrize(("extra", "message"), [
    ({"GENRM_GPUS": "0"}, "verl's colocated mode) judges only after the whole batch is generated"),
    ({"GENRM_PATH": ""}, "set GENRM_PATH"),
    ({"GENRM_TP": "3"}, "GENRM_TP=3 must divide GENRM_GPUS=2"),
    ({"GENRM_GPUS": "8"}, "leaves none of N_GPUS=8 for the policy"),
])
def test_scripts_refuse_impossible_gpu_splits(extra: dict[str, str], message: str, tmp_path: Path) -> None:
    env = {**os.environ, **script_env(tmp_path, "/models/genrm", tmp_path), **extra, "WRITING_RL_PRINT_ARGS": "1"}
    result = subprocess.run(["bash", "scripts/train_brpo.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_preflight_accepts_judge_verl_and_skips_reachability(data: Path, model_dir: str, tmp_path: Path) -> None:
    result = call_cli("preflight", "scripts/train_brpo.sh", env=script_env(data, model_dir, tmp_path))
    assert "[skip] judge reachable: JUDGE=verl" in result.stdout
    assert "[ok] judge context: the longest judge request" in result.stdout
    assert result.returncode == 0, result.stdout


def test_preflight_fails_a_context_too_small_for_the_judge_request(data: Path, model_dir: str, tmp_path: Path) -> None:
    result = call_cli("preflight", "scripts/train_writing_rl.sh",
                     env=script_env(data, model_dir, tmp_path, GENRM_MAX_LEN="4096"))
    assert "[FAIL] judge context: the longest judge request" in result.stdout
    assert "more than reward.reward_model.rollout.max_model_len=4096: raise GENRM_MAX_LEN" in result.stdout
    assert result.returncode == 1


def router_client(router: str, **settings: Any) -> RouterJudgeClient:
    values = {"model": "test-judge", "max_retries": 4, "backoff_initial_s": 0.01, "max_tokens": 100, **settings}
    return RouterJudgeClient(JudgeSettings(base_url=f"http://{router}/v1", **values))


def judge_once(client: RouterJudgeClient, text: str) -> str:
    async def run() -> str:
        async with client:
            return (await client.complete([{"role": "user", "content": text}])).text

    return asyncio.run(run())


def test_an_over_long_request_is_one_configuration_error_not_retries(genrm: JudgeServerProcess, router: str) -> None:
    genrm.configure(strict_model=True, max_model_len=300)
    genrm.reset()
    with pytest.raises(Exception, match=r"the judge prompt is 500 tokens .* more than the GenRM's max_model_len=300\. "
                                        r"Raise GENRM_MAX_LEN"):
        judge_once(router_client(router), "x" * 2000)
    assert genrm.stats()["requests"] == REPEATS_BEFORE_DIAGNOSIS  # not 1 + max_retries


def test_a_transient_500_is_still_retried(genrm: JudgeServerProcess, router: str) -> None:
    genrm.configure(strict_model=True, max_model_len=0)
    genrm.reset()
    genrm.script("error_500", "error_500", "error_500")
    assert "[[C]]" in judge_once(router_client(router), "a request the GenRM can serve")
    assert genrm.stats()["requests"] == 4


def brpo_config(model_dir: str, experiment: str, tmp_path: Path) -> Any:
    """The overrides train_brpo.sh passes with JUDGE=verl, on a 2-worker reward loop."""
    env = {**os.environ, **script_env(tmp_path, model_dir, tmp_path), "WRITING_RL_PRINT_ARGS": "1",
           "EXPERIMENT_NAME": experiment, "GROUP_SIZE": str(G), "TRAIN_BATCH_SIZE": "4", "JUDGE_RETRIES": "2"}
    printed = subprocess.run(["bash", "scripts/train_brpo.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    return compose_trainer_config([*printed, "reward.num_workers=2",
                                   "+reward.reward_kwargs.judge.backoff_initial_s=0.01"])


def brpo_row(i: int) -> dict[str, Any]:
    ground_truth = {"prompt": f"Write piece {i}.", "target": None, "criteria": None, "id": str(i)}
    return {"data_source": "writing", "prompt": [{"role": "user", "content": f"Write piece {i}."}],
            "reward_model": {"style": "rule", "ground_truth": ground_truth},
            "extra_info": {"index": str(i), "split": "train"}}


@pytest.mark.slow
def test_judgements_flow_through_verls_router_to_our_coordinator(
        ray_local: None, model_dir: str, tokenizer: Any, genrm: JudgeServerProcess, router: str,
        tmp_path: Path) -> None:
    genrm.configure(strict_model=True, max_model_len=0, model=model_dir)  # vLLM serves model_path verbatim
    genrm.reset()
    experiment = f"verl-judge-{uuid.uuid4().hex[:8]}"
    qualities = [2.0, 7.0, 4.0, 9.0]
    with reward_workers_behind_router(brpo_config(model_dir, experiment, tmp_path), router) as workers:
        refs = [workers[s % 2].compute_score.remote(rollout_data(tokenizer, brpo_row(0), f"QUALITY={q}", "u0", s))
                for s, q in enumerate(qualities)]
        rewards = [r["reward_score"] for r in ray.get(refs, timeout=180)]
        stats = ray.get(ray.get_actor(f"writing_rl_coordinator:{experiment}").stats.remote())
    reference = choose_reference(list(range(G)), "u0", seed=0)
    assert rewards == [0.0 if s == reference else (1.0 if q > qualities[reference] else -1.0)
                       for s, q in enumerate(qualities)]
    assert genrm.stats()["requests"] == 2 * (G - 1)  # both orders of every non-reference member, via the router
    assert stats["judge"]["failures"] == 0


@pytest.mark.slow
def test_a_model_the_router_does_not_serve_fails_the_first_reward_call(
        ray_local: None, model_dir: str, tokenizer: Any, genrm: JudgeServerProcess, router: str,
        tmp_path: Path) -> None:
    genrm.configure(strict_model=True, max_model_len=0, model="another-genrm")
    genrm.reset()
    experiment = f"verl-judge-{uuid.uuid4().hex[:8]}"
    with reward_workers_behind_router(brpo_config(model_dir, experiment, tmp_path), router) as workers:
        call = workers[0].compute_score.remote(rollout_data(tokenizer, brpo_row(1), "QUALITY=3", "u1", 0))
        with pytest.raises(ray.exceptions.RayTaskError, match=r"verl's GenRM servers answer to \['another-genrm'\]"):
            ray.get(call, timeout=180)
    assert genrm.stats()["requests"] == 0  # no judgement was attempted
