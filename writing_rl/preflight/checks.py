"""The checks `writing-rl preflight` and `writing-rl doctor` print: each a name, a verdict and a detail that
says how to fix it; the judge checks both commands run."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from writing_rl.judge.settings import JudgeSettings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def print_checks(checks: list[Check]) -> None:
    for check in checks:
        print(check.line(), flush=True)


def check_judge_reachable(settings: JudgeSettings) -> Check:
    """GET /models on the judge: reachable, and serving the configured model. No cache: a check writes nothing."""
    from writing_rl.judge.client import JudgeClient

    async def models() -> list[str]:
        async with JudgeClient(dataclasses.replace(settings, cache_path=None)) as client:
            return await client.list_models()

    try:
        served = asyncio.run(models())
    except Exception as exc:
        return Check("judge reachable", False, f"{settings.base_url}: {exc}")
    ok = not served or settings.model in served
    detail = f"{settings.base_url} serves {served}"
    if not ok:
        detail += f"; configured model {settings.model!r} is not among them (set --model / JUDGE_MODEL)"
    return Check("judge reachable", ok, detail)


def check_api_key(settings: JudgeSettings) -> Check:
    """The key variable is set, or the judge is on this machine and needs none (doctor and preflight)."""
    name = f"API key variable {settings.api_key_env}"
    if settings.api_key is not None:
        return Check(name, True, "set")
    if settings.is_loopback:
        return Check(name, True, "not set (a loopback judge needs none)")
    return Check(name, False, f"not set: export {settings.api_key_env}=... before training")


@dataclass(frozen=True)
class Skipped(Check):
    """A check that could not run here: shown as such, never as passed."""

    def line(self) -> str:
        return f"[skip] {self.name}: {self.detail}"


@dataclass(frozen=True)
class Warned(Check):
    """Training can start, but the user should know (ok=True: it does not fail preflight)."""

    def line(self) -> str:
        return f"[warn] {self.name}: {self.detail}"
