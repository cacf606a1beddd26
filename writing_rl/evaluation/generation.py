"""Responses generated from an OpenAI-compatible endpoint (a served checkpoint, a baseline model).

Goes through `JudgeClient`: the same limits, retries and SQLite cache, so an interrupted run resumes for
free. Sample k of a prompt is cached apart from sample j (the client's `vote`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tqdm import tqdm

from writing_rl.evaluation.inputs import EvalPrompt
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeError
from writing_rl.judge.settings import JudgeSettings
from writing_rl.rollout import strip_reasoning


class GenerationError(JudgeError):
    """An endpoint gave no usable response for a prompt."""


async def generate_responses(settings: JudgeSettings, prompts: Sequence[EvalPrompt], side: str, *,
                             samples: int = 1, progress: bool = True) -> dict[str, list[str]]:
    """{prompt id: [sample, ...]} from the endpoint; an empty answer or a failed request is an error."""
    client = JudgeClient(settings, fail_fast_on_connect=True)

    where = f"--{side}-base-url {settings.base_url} (model {settings.model!r})"

    async def one(prompt: EvalPrompt, k: int) -> str:
        try:
            reply = await client.complete(prompt.messages, vote=k)
        except JudgeError as exc:  # the client speaks of a judge ("judge answered HTTP 404"); here it is a writer
            raise GenerationError(f"{where}: no response for prompt {prompt.id!r}: the endpoint "
                                  f"{str(exc).removeprefix('judge ')}") from exc
        text = strip_reasoning(reply.text)
        if not text:
            raise GenerationError(f"{where}: an empty response for prompt {prompt.id!r} (sample {k}); "
                                  "raise --gen-max-tokens?")
        return text

    jobs = [(p, k) for p in prompts for k in range(samples)]
    tasks = [asyncio.ensure_future(one(p, k)) for p, k in jobs]
    try:
        with tqdm(total=len(tasks), desc=f"generating {side}", unit="text", disable=not progress) as bar:
            for done in asyncio.as_completed(tasks):
                await done
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
    out: dict[str, list[str]] = {}
    for (prompt, _), task in zip(jobs, tasks, strict=True):
        out.setdefault(prompt.id, []).append(task.result())
    return out
