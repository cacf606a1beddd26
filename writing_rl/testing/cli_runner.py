"""Run the `writing-rl` command as a user does: a real subprocess, without the caller's JUDGE_* variables, and
where a test interrupts it, with Ctrl-C delivered as a terminal delivers it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**_user_env(), **(env or {})}
    return subprocess.run([sys.executable, "-m", "writing_rl.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd)


def _as_in_a_terminal() -> None:
    """A shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt;
    the command under test must see Ctrl-C as a user's terminal delivers it, however the tests were launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(*args: str, cwd: Path = REPO) -> subprocess.Popen[str]:
    """The command running in the background, for a test to interrupt (`send_signal(signal.SIGINT)`)."""
    return subprocess.Popen([sys.executable, "-m", "writing_rl.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_user_env(), cwd=cwd,
                            preexec_fn=_as_in_a_terminal)


def wait_for_requests(server: Any, count: int, timeout_s: float = 60,
                      process: subprocess.Popen[str] | None = None) -> None:
    """Until a loopback server (its `stats()["requests"]`) has received `count` requests: the command under
    test is then mid-run. With `process`, it must still be running meanwhile."""
    deadline = time.monotonic() + timeout_s
    while server.stats()["requests"] < count:
        assert process is None or process.poll() is None, "the command ended before it got that far"
        assert time.monotonic() < deadline, "the command never got that far"
        time.sleep(0.05)
