"""Start a loopback test server (the judge, the writers) as a real subprocess and talk to its control API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypeVar

import httpx

_Server = TypeVar("_Server", bound="LoopbackServerProcess")


class LoopbackServerProcess:
    """A `writing_rl.testing` server module run as `python -m MODULE --port 0 --port-file FILE ARGS...`."""

    module: str = ""
    name: str = "test server"

    def __init__(self, args: list[str], startup_timeout_s: float = 30.0):
        self.args = args
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/control"

    def start(self: _Server) -> _Server:
        workdir = Path(tempfile.mkdtemp(prefix=self.name.replace(" ", "-") + "-"))
        port_file = workdir / "port"
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", "0", "--port-file", str(port_file), *self.args],
            stdout=subprocess.DEVNULL, stderr=open(workdir / "stderr.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while not port_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {workdir / 'stderr.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start within {self.startup_timeout_s}s")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.control_url}/stats", timeout=10).json()

    def reset(self) -> None:
        httpx.post(f"{self.control_url}/reset", timeout=10).raise_for_status()

    def configure(self, **updates: Any) -> None:
        httpx.post(f"{self.control_url}/config", json=updates, timeout=10).raise_for_status()


class JudgeServerProcess(LoopbackServerProcess):
    """`with JudgeServerProcess(latency=0.2) as server: server.base_url ...`"""

    module = "writing_rl.testing.judge_server"
    name = "test judge server"

    def __init__(self, *, mode: str = "verdict", latency: float = 0.0, jitter: float = 0.0,
                 hang: float = 30.0, faults: str = "", seed: int = 0, quality: str = "marker", noise: float = 0.0,
                 first_position_bonus: float = 0.0, startup_timeout_s: float = 30.0):
        super().__init__(["--mode", mode, "--latency", str(latency), "--jitter", str(jitter), "--hang", str(hang),
                          "--faults", faults, "--seed", str(seed), "--quality", quality, "--noise", str(noise),
                          "--first-position-bonus", str(first_position_bonus)], startup_timeout_s)

    def script(self, *behaviours: Any) -> None:
        httpx.post(f"{self.control_url}/script", json={"behaviours": list(behaviours)},
                   timeout=10).raise_for_status()
