"""The CPU backend's parts on their own: registration only when asked for, batched sampling, and the `hf_cpu` server
and adapter through Ray (weights in, log-probs out), with a tiny random model written once per module."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import ray
import torch

from writing_rl.cpu.generation import GenerationRequest, generate_batch, score
from writing_rl.models.tiny import write_tiny_model

REGISTRATIONS = """
import json, sys, verl
from verl.plugin.platform import PlatformRegistry
from verl.workers.rollout import base
from verl.workers.rollout.replica import RolloutReplicaRegistry
import verl.utils.distributed as distributed
from verl.utils.device import get_device_name
print(json.dumps({
    "platforms": list(PlatformRegistry.registered_names()),
    "replicas": sorted(RolloutReplicaRegistry._registry),
    "adapters": sorted(name for name, _ in base._ROLLOUT_REGISTRY),
    "plain_gloo": getattr(distributed.initialize_global_process_group_ray, "writing_rl_plain_gloo", False),
    "cpu_modules": sorted(m for m in sys.modules if m.startswith("writing_rl.cpu.")),
    "device": get_device_name() if "--ask-device" in sys.argv else None,
}))
"""


def registrations(platform: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    if platform:
        env["VERL_PLATFORM"] = platform
    out = subprocess.run([sys.executable, "-c", REGISTRATIONS, "--ask-device"] if platform else
                         [sys.executable, "-c", REGISTRATIONS], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_gpu_job_gets_nothing_of_the_cpu_backend() -> None:
    """Without VERL_PLATFORM=cpu, verl's registries and functions are exactly verl's own."""
    plain = registrations(None)
    assert plain["platforms"] == ["nvidia", "huawei", "amd"]
    assert "hf_cpu" not in plain["replicas"] and "hf_cpu" not in plain["adapters"]
    assert plain["plain_gloo"] is False
    assert plain["cpu_modules"] == []


@pytest.mark.slow
def test_verl_platform_cpu_registers_platform_rollout_and_plain_gloo() -> None:
    cpu = registrations("cpu")
    assert "cpu" in cpu["platforms"] and cpu["device"] == "cpu"
    assert "hf_cpu" in cpu["replicas"] and "hf_cpu" in cpu["adapters"]
    assert cpu["plain_gloo"] is True


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = write_tiny_model(tmp_path_factory.mktemp("tiny"))
    return folder, AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_batched_sampling_reports_the_log_probs_of_unbatched_scoring(tiny_model: tuple[Path, Any, Any]) -> None:
    """Left padding, the KV cache and per-row temperatures leave each row's log-probs what it alone would get."""
    _, model, tokenizer = tiny_model
    requests = [GenerationRequest(tokenizer.encode("Once upon a time" * (i + 1)), max_tokens=6 + i,
                                  temperature=t, top_k=k, top_p=p)
                for i, (t, k, p) in enumerate([(1.0, -1, 1.0), (0.0, -1, 1.0), (0.7, 5, 0.9), (1.3, -1, 0.5)])]
    results = generate_batch(model, requests, stop_ids=set(), pad_id=tokenizer.pad_token_id,
                             generator=torch.Generator().manual_seed(0))
    for request, result in zip(requests, results, strict=True):
        assert len(result.token_ids) == request.max_tokens
        alone = score(model, request.prompt_ids, result.token_ids, request.temperature or 1.0)
        assert max(abs(a - b) for a, b in zip(alone, result.log_probs, strict=True)) < 1e-4


def test_greedy_and_top_k_1_pick_the_argmax_and_a_stop_token_ends_only_its_row(
        tiny_model: tuple[Path, Any, Any]) -> None:
    _, model, tokenizer = tiny_model
    prompt = tokenizer.encode("The sea was")
    greedy, top1 = generate_batch(model, [GenerationRequest(prompt, 5, temperature=0.0),
                                          GenerationRequest(prompt, 5, temperature=1.0, top_k=1)],
                                  stop_ids=set(), pad_id=0)
    assert greedy.token_ids == top1.token_ids
    ids = list(prompt)
    for token in greedy.token_ids:
        assert token == int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        ids.append(token)
    stop = greedy.token_ids[1]
    stopped, longer = generate_batch(model, [GenerationRequest(prompt, 5, temperature=0.0),
                                             GenerationRequest(tokenizer.encode("A"), 5, temperature=0.0)],
                                     stop_ids={stop}, pad_id=0)
    first_stop = greedy.token_ids.index(stop)
    assert stopped.token_ids == greedy.token_ids[:first_stop + 1]  # the stop token is kept, as vLLM keeps the EOS
    assert len(longer.token_ids) == 5 or stop in longer.token_ids


def test_sampling_params_from_verls_agent_loop() -> None:
    request = GenerationRequest.from_sampling_params([1, 2], {"temperature": 0, "top_p": 1.0, "top_k": -1,
                                                               "repetition_penalty": 1.0, "logprobs": True}, 32)
    assert (request.max_tokens, request.temperature, request.top_k) == (32, 0.0, -1)
    assert GenerationRequest.from_sampling_params([1], {"max_tokens": 4, "top_k": 0}, 32).top_k == -1


# ------------------------------------------------------------------------------------------ through Ray, as verl calls
@pytest.fixture(scope="module")
def server(ray_local: None, tiny_model: tuple[Path, Any, Any]) -> Any:
    from writing_rl.cpu.replica import server_name
    from writing_rl.cpu.server import HfCpuServer

    folder, _, _ = tiny_model
    handle = ray.remote(HfCpuServer).options(name=server_name(7), num_cpus=0, max_concurrency=64).remote(
        model_path=str(folder), max_model_len=256, default_max_tokens=8, max_num_seqs=64, seed=0,
        load_format="dummy")
    yield handle
    ray.kill(handle)


def test_server_batches_concurrent_requests_and_returns_verls_token_output(server: Any) -> None:
    from verl.workers.rollout.replica import TokenOutput

    async def many() -> list[TokenOutput]:
        calls = [server.generate.remote(prompt_ids=[10 + i, 20, 30], request_id=str(i),
                                        sampling_params={"temperature": 1.0, "top_p": 1.0, "top_k": -1,
                                                         "logprobs": True, "max_tokens": 4})
                 for i in range(12)]
        return await asyncio.gather(*calls)

    ray.get(server.set_global_steps.remote(5))
    outputs = asyncio.run(many())
    assert all(isinstance(o, TokenOutput) and len(o.token_ids) == 4 == len(o.log_probs) for o in outputs)
    assert {o.extra_fields["global_steps"] for o in outputs} == {5}
    assert max(ray.get(server.stats.remote())["batch_sizes"]) > 1, "concurrent requests were served one by one"


def test_weights_sent_through_the_adapter_reach_the_server(server: Any, tiny_model: tuple[Path, Any, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The actor side of verl's naive sync: the adapter drains the (name, tensor) generator into the server; after
    it, the server's log-probs of a fixed text are those of a transformers copy with the same weights."""
    from verl.workers.config import RolloutConfig

    from writing_rl.cpu.adapter import HfCpuServerAdapter

    _, model, tokenizer = tiny_model
    torch.manual_seed(1)
    weights = {name: tensor + 0.05 * torch.randn_like(tensor) for name, tensor in model.state_dict().items()}
    monkeypatch.setenv("RANK", "0")
    adapter = HfCpuServerAdapter(RolloutConfig(name="hf_cpu"), None, None, replica_rank=7)
    asyncio.run(adapter.resume(["weights"]))
    asyncio.run(adapter.update_weights(iter(weights.items()), global_steps=3))
    prompt, text = tokenizer.encode("Once upon a time"), tokenizer.encode(" a keeper of the light")
    served = ray.get(server.score.remote(prompt, text))
    updated = copy.deepcopy(model)
    updated.load_state_dict(weights)
    expected = score(updated, prompt, text)
    assert max(abs(a - b) for a, b in zip(served, expected, strict=True)) < 1e-5
    stats = ray.get(server.stats.remote())
    assert stats["global_steps"] == 3 and stats["weight_updates"] >= 1
    with pytest.raises(NotImplementedError, match=r"checkpoint_engine\.backend=naive"):
        asyncio.run(adapter.update_weights(iter(()), wire_format="delta_flush"))


def test_a_prompt_longer_than_the_context_is_refused_with_the_setting_to_change(server: Any) -> None:
    with pytest.raises(ray.exceptions.RayTaskError, match="max_model_len=256"):
        ray.get(server.generate.remote(prompt_ids=list(range(300)), sampling_params={}, request_id="x"))
