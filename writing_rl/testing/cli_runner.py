"""Run the `writing-rl` command: as a user does (a real subprocess, without the caller's JUDGE_* variables, and
where a test interrupts it, with Ctrl-C delivered as a terminal delivers it), or, where the subject of a test is
what a command computes rather than the process around it, through the same entry point in this process (no
interpreter and verl start-up per call: seconds each, which dozens of tests paid)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _user_env() -> dict[str, str]:
    return _user_env_of(dict(os.environ))


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**_user_env(), **(env or {})}
    return subprocess.run([sys.executable, "-m", "writing_rl.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd)


def call_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO
                       ) -> subprocess.CompletedProcess[str]:
    """`writing_rl.cli.main(args)` with the environment, working folder, stdout and stderr a subprocess would get
    (JUDGE_* variables dropped, `env` added), all restored afterwards. Exit codes are main's return value or
    SystemExit's code (argparse errors give 2, as on the command line)."""
    from writing_rl.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update({**_user_env_of(saved_env), **(env or {})})
    os.chdir(cwd)
    root.handlers = []  # main's logging.basicConfig binds its handler to this call's stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        root.handlers, root.level = saved_handlers, saved_level
    return subprocess.CompletedProcess(["writing-rl", *args], int(code or 0), out.getvalue(), err.getvalue())


def _user_env_of(environment: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in environment.items() if not k.startswith("JUDGE_")}


def _as_in_a_terminal() -> None:
    """A shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt;
    the command under test must see Ctrl-C as a user's terminal delivers it, however the tests were launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_process(*args: str, cwd: Path = REPO) -> subprocess.Popen[str]:
    """The command running in the background, for a test to interrupt (`send_signal(signal.SIGINT)`)."""
    return subprocess.Popen([sys.executable, "-m", "writing_rl.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_user_env(), cwd=cwd,
                            preexec_fn=_as_in_a_terminal)


def wait_for_requests(server: Any, count: int, timeout_s: float = 300,
                      process: subprocess.Popen[str] | None = None) -> None:
    """Until a loopback server (its `stats()["requests"]`) has received `count` requests: the command under
    test is then mid-run. With `process`, it must still be running meanwhile."""
    deadline = time.monotonic() + timeout_s
    while server.stats()["requests"] < count:
        assert process is None or process.poll() is None, "the command ended before it got that far"
        assert time.monotonic() < deadline, "the command never got that far"
        time.sleep(0.05)
