"""Start the test writer server (`writer_server.py`) as a real subprocess and talk to its control API."""

from __future__ import annotations

import json
from typing import Any

from writing_rl.testing.server_process import LoopbackServerProcess


class WriterServerProcess(LoopbackServerProcess):
    """`with WriterServerProcess(qualities={"policy": 3, "strong": 8}) as writers: writers.base_url ...`"""

    module = "writing_rl.testing.writer_server"
    name = "test writer server"

    def __init__(self, *, startup_timeout_s: float = 30.0, **config: Any):
        super().__init__(["--config", json.dumps(config)], startup_timeout_s)
