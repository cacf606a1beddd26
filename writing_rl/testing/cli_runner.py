"""Run the `writing-rl` command as a user does: a real subprocess, without the caller's JUDGE_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "writing_rl.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd)
