"""The judge behind verl's reward router (`judge_backend=verl`).

verl's router forwards every request unchanged to one of the GenRM's vLLM servers, but turns every upstream
error (a 404 for a model name it does not serve, a 400 for a prompt longer than its context, a 429) into a bare
`500 Internal Server Error`. Retried as a transient error, a wrong setting would cost every rollout its
judgement, for hours. So this client asks the servers what is wrong once the same 500 repeats: the names they
serve (`GET /v1/models`) and the request's length against their context (vLLM's `POST /tokenize`), and turns a
cause found into a `JudgeConfigurationError` that names the setting to change.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aiohttp

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeConfigurationError, JudgeError, RetryableJudgeError
from writing_rl.judge.settings import JudgeSettings
from writing_rl.verl_glue.genrm_hosting import router_base_url

REPEATS_BEFORE_DIAGNOSIS = 2
"""The same HTTP 500 this many times for one request: ask the servers why before retrying further."""
ROUTER_STATUS = 500


class RouterJudgeClient(JudgeClient):
    def __init__(self, settings: JudgeSettings):
        super().__init__(settings)
        self._server_errors: dict[int, tuple[str, int]] = {}
        """id(request body) -> (last server error, how many times in a row), for the requests in flight."""

    async def _complete_uncached(self, body: dict[str, Any]) -> Any:
        self._server_errors[id(body)] = ("", 0)
        try:
            return await super()._complete_uncached(body)
        finally:
            self._server_errors.pop(id(body), None)

    async def _attempt(self, body: dict[str, Any], estimate: int) -> tuple[str, int, int, float]:
        try:
            return await super()._attempt(body, estimate)
        except RetryableJudgeError as exc:
            if exc.kind != "server_error":
                raise
            last, count = self._server_errors.get(id(body), ("", 0))
            count = count + 1 if str(exc) == last else 1
            self._server_errors[id(body)] = (str(exc), count)
            if count == REPEATS_BEFORE_DIAGNOSIS:
                cause = await self.diagnose(body)
                if cause:
                    raise JudgeConfigurationError(ROUTER_STATUS, f"{cause} (verl's reward router answered "
                                                                 f"{exc} {count} times: it hides the GenRM's own "
                                                                 "error)") from exc
            raise

    async def diagnose(self, body: dict[str, Any]) -> str | None:
        """Why the GenRM refuses this request, if its servers can tell: a cause that retrying cannot fix."""
        try:
            served = await self.list_models()
        except JudgeError:
            return None
        model = body.get("model")
        if model and served and model not in served:
            return unserved_model_message(str(model), served)
        length = await self._request_length(body)
        if length is None:
            return None
        prompt_tokens, max_model_len = length
        if prompt_tokens + int(body["max_tokens"]) > max_model_len:
            return (f"the judge prompt is {prompt_tokens} tokens (the GenRM's tokenizer) and judge.max_tokens="
                    f"{body['max_tokens']}: together more than the GenRM's max_model_len={max_model_len}. Raise "
                    "GENRM_MAX_LEN (reward.reward_model.rollout.max_model_len), or lower JUDGE_MAX_TOKENS or "
                    "MAX_RESPONSE_LENGTH")
        return None

    async def _request_length(self, body: dict[str, Any]) -> tuple[int, int] | None:
        """(prompt tokens, max_model_len) from vLLM's /tokenize, which the router reaches like any path."""
        url = self._base_url.removesuffix("/v1") + "/tokenize"
        request = {"model": body.get("model"), "messages": body["messages"], "add_generation_prompt": True}
        try:
            async with self._http().post(url, json=request, headers=self._headers()) as response:
                payload = await response.read()
                if response.status >= 400:
                    return None
            answer = json.loads(payload)
            return int(answer["count"]), int(answer["max_model_len"])
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError):
            return None

    async def check_served_model(self) -> None:
        """Once before the first judgement: the router answers and serves `judge.model` (else a clear error)."""
        try:
            served = await self.list_models()
        except JudgeError as exc:
            raise JudgeConfigurationError(ROUTER_STATUS, f"verl's reward router at {self._base_url} does not answer "
                                                         f"GET /models ({exc}); the GenRM servers or the router "
                                                         "failed to start: look for their errors in the Ray "
                                                         "logs") from exc
        if self.settings.model not in served:
            raise JudgeConfigurationError(ROUTER_STATUS, unserved_model_message(self.settings.model, served))


def unserved_model_message(model: str, served: list[str]) -> str:
    return (f"the judge asks for model {model!r}, but verl's GenRM servers answer to {served} only (vLLM serves "
            "reward.reward_model.model_path verbatim); leave +reward.reward_kwargs.judge.model unset with "
            "judge_backend=verl, and give every node the same GENRM_PATH")


class HostedJudge:
    """The judge endpoint of `judge_backend=verl`, known once verl hands the reward workers its router address
    and checked once, before the first judgement, so a wrong setting fails the first reward call clearly."""

    def __init__(self, settings: JudgeSettings):
        self._settings = settings
        self._address: str | None = None
        self._client: RouterJudgeClient | None = None
        self._check: asyncio.Task[None] | None = None

    def attach(self, address: str) -> None:
        """Every reward worker sends the address it was given; they must agree."""
        if self._address not in (None, address):
            raise ValueError(f"reward workers disagree on verl's reward router address: {self._address} and "
                             f"{address}; the GenRM must be hosted once per job")
        self._address = address

    def client(self) -> RouterJudgeClient:
        if self._address is None:
            raise JudgeConfigurationError(ROUTER_STATUS, "judge_backend=verl, but no reward worker received verl's "
                                                         "reward router address: set reward.reward_model.enable="
                                                         "true (JUDGE=verl in the scripts)")
        if self._client is None:
            self._client = RouterJudgeClient(replace(self._settings, base_url=router_base_url(self._address)))
        return self._client

    async def ready(self) -> None:
        """The start-up check, run once and shared by every caller; its failure is raised to each of them."""
        if self._check is None:
            self._check = asyncio.ensure_future(self.client().check_served_model())
        await asyncio.shield(self._check)
