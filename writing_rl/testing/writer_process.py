"""Start the test writer server (`writer_server.py`) as a real subprocess and talk to its control API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


class WriterServerProcess:
    """`with WriterServerProcess(qualities={"policy": 3, "strong": 8}) as writers: writers.base_url ...`"""

    def __init__(self, *, startup_timeout_s: float = 30.0, **config: Any):
        self.config = config
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/control"

    def start(self) -> WriterServerProcess:
        workdir = Path(tempfile.mkdtemp(prefix="writer-server-"))
        port_file = workdir / "port"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "writing_rl.testing.writer_server", "--port", "0", "--port-file", str(port_file),
             "--config", json.dumps(self.config)],
            stdout=subprocess.DEVNULL, stderr=open(workdir / "stderr.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while not port_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"test writer server exited with {self.process.returncode}; "
                                   f"see {workdir / 'stderr.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"test writer server did not start within {self.startup_timeout_s}s")
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

    def __enter__(self) -> WriterServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.control_url}/stats", timeout=10).json()

    def reset(self) -> None:
        httpx.post(f"{self.control_url}/reset", timeout=10).raise_for_status()

    def configure(self, **updates: Any) -> None:
        httpx.post(f"{self.control_url}/config", json=updates, timeout=10).raise_for_status()
