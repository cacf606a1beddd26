"""Reading a verl job's console output: how far start-up has come, and the first real error with the part of the
job it came from (not the Ray stack that wraps it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MILESTONES: tuple[tuple[str, str], ...] = (
    ("Started a local Ray instance", "Ray started"),
    ("dataloader initialized", "data loaded"),
    ("actor and ref model engine initialized", "actor ready (FSDP2 on gloo)"),
    ("reward loop manager initialized", "reward workers ready"),
    ("LLMServerManager:", "rollout server ready"),
    ("all initialize finished", "ready to fit"),
    ("Creating file logger", "training"),
)
"""(a substring of a line verl prints, what it means), in the order verl prints them."""

_ERROR = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(?P<type>[A-Za-z_]\w*(?:Error|Exception|Interrupt))(?:: (?P<text>.*))?$")
_RAY_CALL = re.compile(r"ray::(?P<actor>[\w]+)\.(?P<method>\w+)\(\)")
_PREFIX = re.compile(r"^(?:\x1b\[\d+m)?\([\w]+ pid=\d+(?:, ip=[\d.]+)?\)(?:\x1b\[0m)? ?")
_WRAPPERS = {"RayTaskError", "RayActorError", "ActorDiedError", "TaskError", "ActorUnavailableError"}
_HYDRA = ("Could not override", "Could not append", "Key '", "mismatched input", "LexerNoViableAltException")


@dataclass(frozen=True)
class JobError:
    part: str
    """data | judge | reward | actor | critic | rollout | config | trainer"""
    message: str

    def line(self) -> str:
        return f"{self.part}: {self.message}"


def milestone(line: str) -> str | None:
    return next((label for marker, label in MILESTONES if marker in line), None)


def _part(actor: str, method: str, message: str) -> str:
    text = f"{actor}.{method} {message}".lower()
    if any(w in text for w in ("judge", "coordinator", "api key", "httpx", "connect")):
        return "judge"
    if actor == "WorkerDict":
        return "critic" if method.startswith("critic") else "actor"
    if actor in ("HfCpuServer", "AgentLoopWorkerTQ", "AgentLoopWorker") or "rollout" in method:
        return "rollout"
    if actor.startswith("RewardLoop") or "reward" in text:
        return "reward"
    if any(w in text for w in ("parquet", "dataset", "column", "dataloader", "data.")):
        return "data"
    return "trainer"


def first_error(lines: list[str]) -> JobError | None:
    """The innermost error of the job's first failure: Ray prints the cause before the errors that wrap it."""
    actor, method = "TaskRunnerV1", "run"
    for raw in lines:
        line = _PREFIX.sub("", raw.rstrip())
        if any(line.startswith(marker) for marker in _HYDRA):
            return JobError("config", line)
        call = _RAY_CALL.search(line)
        if call:
            actor, method = call.group("actor"), call.group("method")
        match = _ERROR.match(line.strip())
        if match and match.group("type") not in _WRAPPERS:
            message = f"{match.group('type')}: {match.group('text') or ''}".rstrip(": ")
            return JobError(_part(actor, method, message), message)
    return None
