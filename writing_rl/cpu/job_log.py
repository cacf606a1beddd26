"""Reading a verl job's console output: how far start-up has come, and the first real error with the part of the
job it came from (not the Ray stack that wraps it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

TRAINING = "training"
"""The last milestone: start-up ends there."""
MILESTONES: tuple[tuple[str, str], ...] = (
    ("Started a local Ray instance", "Ray started"),
    ("dataloader initialized", "data loaded"),
    ("actor and ref model engine initialized", "actor ready (FSDP2 on gloo)"),
    ("reward loop manager initialized", "reward workers ready"),
    ("LLMServerManager:", "rollout server ready"),
    ("all initialize finished", "ready to fit"),
    ("Creating file logger", TRAINING),
)
"""(a substring of a line verl prints, what it means), in the order verl prints them."""

_ERROR = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(?P<type>[A-Za-z_]\w*(?:Error|Exception|Interrupt))(?:: (?P<text>.*))?$")
_RAY_CALL = re.compile(r"ray::(?P<actor>[\w]+)\.(?P<method>\w+)\(\)")
_PREFIX = re.compile(r"^(?:\x1b\[\d+m)?\([\w]+ pid=\d+(?:, ip=[\d.]+)?\)(?:\x1b\[0m)? ?")
_WRAPPERS = {"RayTaskError", "RayActorError", "ActorDiedError", "TaskError", "ActorUnavailableError"}
_ERROR_REPR = re.compile(r"^(?P<type>[A-Za-z_]\w*(?:Error|Exception))\((?P<text>.*)\)$")
"""Hydra's form for an error raised while it instantiates a config: `AssertionError("...")`."""
_HYDRA = ("Could not override", "Could not append", "Key '", "mismatched input", "LexerNoViableAltException")
_CONFIG_INSTANTIATION = "Error in call to target"


@dataclass(frozen=True)
class JobError:
    part: str
    """data | judge | index | reward | actor | critic | rollout | config | trainer"""
    message: str

    def line(self) -> str:
        return f"{self.part}: {self.message}"


def milestone(line: str) -> str | None:
    return next((label for marker, label in MILESTONES if marker in line), None)


_FILE = re.compile(r'^\s*File "(?P<path>[^"]+)"')
_PART_OF_FILE = (("/verl/utils/config.py", "config"), ("/verl/workers/config/", "config"),
                 ("/verl/trainer/config/", "config"), ("/utils/dataset/", "data"), ("/torch/utils/data/", "data"),
                 ("/writing_rl/data/", "data"),
                 ("/writing_rl/judge/", "judge"), ("/writing_rl/curriculum/", "index"),
                 ("/writing_rl/cpu/", "rollout"), ("/workers/rollout/", "rollout"), ("/agent_loop/", "rollout"),
                 ("/reward_loop/", "reward"), ("/writing_rl/", "reward"), ("/workers/engine", "actor"),
                 ("/transformers/", "actor"))
"""Where the innermost frame of the error lives -> the part of the job (first match wins)."""


def _part(actor: str, method: str, frame: str, message: str) -> str:
    text = f"{actor}.{method} {message}".lower()
    if any(w in text for w in ("judge", "coordinator", "api key")):
        return "judge"
    if actor == "WorkerDict" and method.startswith("critic"):
        return "critic"
    by_file = next((part for marker, part in _PART_OF_FILE if marker in frame), None)
    if by_file:
        return by_file
    if actor == "WorkerDict":
        return "actor"
    if actor in ("HfCpuServer", "AgentLoopWorkerTQ", "AgentLoopWorker"):
        return "rollout"
    if actor.startswith("RewardLoop"):
        return "reward"
    return "trainer"


def first_error(lines: list[str]) -> JobError | None:
    """The innermost error of the job's first failure: Ray prints the cause before the errors that wrap it."""
    actor, method, frame = "TaskRunnerV1", "run", ""
    for raw in lines:
        line = _PREFIX.sub("", raw.rstrip())
        if any(line.startswith(marker) for marker in _HYDRA):
            return JobError("config", line)
        call = _RAY_CALL.search(line)
        if call:
            actor, method = call.group("actor"), call.group("method")
        file = _FILE.match(line)
        if file:
            frame = file.group("path")
        if line.startswith(_CONFIG_INSTANTIATION):
            actor, method, frame = "main_ppo", "config", "/verl/workers/config/"
        match = _ERROR.match(line.strip())
        quoted = None if match else _ERROR_REPR.match(line.strip())
        match = match or quoted
        if match and match.group("type") not in _WRAPPERS:
            text = (match.group("text") or "").strip()
            text = text[1:-1] if quoted and text[:1] in "\"'" and text[-1:] == text[:1] else text
            message = f"{match.group('type')}: {text}".rstrip(": ")
            return JobError(_part(actor, method, frame, message), message)
    return None
