"""Responses of the policy and the candidates: one cached, rate-limited client per endpoint."""

from __future__ import annotations

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeRequestError, JudgeUnavailable
from writing_rl.selection.calls import CallCounts, LimitedCalls, StopGate
from writing_rl.selection.endpoints import Endpoint


class GenerationFailed(Exception):
    """An endpoint gave no usable response to one prompt (after its retries)."""


def generation_messages(prompt: str, system_prompt: str | None) -> list[dict[str, str]]:
    """The chat the policy will see in training (`data build` writes the same messages)."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": prompt})
    return messages


class Writer:
    """`await writer.write(messages)` -> the endpoint's response, from its cache when it was paid before."""

    def __init__(self, endpoint: Endpoint, gate: StopGate):
        self.endpoint = endpoint
        self.client = JudgeClient(endpoint.settings)
        self.counts = CallCounts()
        self._limited = LimitedCalls(gate, endpoint.settings.max_concurrency)

    async def write(self, messages: list[dict[str, str]]) -> str:
        try:
            reply = await self._limited.call(lambda: self.client.complete(messages))
        except (JudgeUnavailable, JudgeRequestError) as exc:
            self.counts.add(None)
            # the client words its errors for a judge: "judge answered HTTP 404: ..." -> "policy answered ..."
            raise GenerationFailed(f"{self.endpoint.name} {str(exc).removeprefix('judge ')}") from exc
        self.counts.add(reply)
        if not reply.text.strip():
            raise GenerationFailed(f"{self.endpoint.name} answered with an empty text")
        return reply.text

    async def aclose(self) -> None:
        await self.client.aclose()
