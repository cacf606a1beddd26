"""`python -m writing_rl.judge.key_env_check`: the training scripts' guard before verl prints its config.

The value is read from the environment variable JUDGE_API_KEY_ENV, never from the command line (where the
process list would show it), and a value that looks like a key is refused without being shown.
"""

from __future__ import annotations

import os
import sys

from writing_rl.judge.settings import JudgeSettings


def main() -> int:
    try:
        JudgeSettings(api_key_env=os.environ.get("JUDGE_API_KEY_ENV", ""))
    except ValueError as exc:
        print(f"JUDGE_API_KEY_ENV: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
