from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from writing_rl.testing.server_process import JudgeServerProcess

DEFAULT_SERVER_CONFIG = {"mode": "verdict", "latency_s": 0.0, "jitter_s": 0.0, "hang_s": 30.0,
                         "retry_after_s": 0.05, "faults": {}, "first_position_bonus": 0.0, "seed": 0,
                         "model": "test-judge", "strict_model": False, "max_model_len": 0,
                         "quality": "marker", "noise_sd": 0.0}


@pytest.fixture(autouse=True)
def isolated_environment() -> Iterator[None]:
    """Each test ends with the environment it started with. A test driving verl's trainer in this process was seen
    to leave variables it had set with monkeypatch (MODEL_PATH, N_GPUS) behind, changing what later tests' script
    runs composed."""
    saved = dict(os.environ)
    yield
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def judge_server_process() -> Iterator[JudgeServerProcess]:
    with JudgeServerProcess() as server:
        yield server


@pytest.fixture
def judge_server(judge_server_process: JudgeServerProcess) -> JudgeServerProcess:
    """The shared loopback judge, reset to defaults with empty stats for each test."""
    judge_server_process.configure(**DEFAULT_SERVER_CONFIG)
    judge_server_process.reset()
    return judge_server_process


@pytest.fixture
def clean_judge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("JUDGE_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A real local Ray for the whole session (started once: it takes seconds)."""
    import ray

    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false", "VERL_LOGGING_LEVEL": "WARN"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def transfer_queue(ray_local: None) -> Iterator[None]:
    """verl's TransferQueue for the tests that drive its V1 trainer (one per module: closed after it)."""
    import transfer_queue as tq

    from writing_rl.testing.trainer_on_cpu import TQ_OVERRIDES
    from writing_rl.verl_glue.config import compose_trainer_config

    tq.init(compose_trainer_config(TQ_OVERRIDES).transfer_queue)
    yield
    tq.close()


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from writing_rl.models.tokenizer import gpt2_tokenizer_dir

    return str(gpt2_tokenizer_dir(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: str):
    from verl.utils import hf_tokenizer

    return hf_tokenizer(tokenizer_dir)
