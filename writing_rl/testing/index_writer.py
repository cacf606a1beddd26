"""A process that writes index states k, k+1, ... in a loop, for crash tests (killed with SIGKILL).

State k is {"p<i>": (k + i) % 7 for i in range(keys)} plus {"step": k}: a reader can tell which
state a file holds and check that it is whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

from writing_rl.curriculum.index_file import write_index


def state(k: int, keys: int) -> dict[str, int]:
    return {**{f"p{i}": (k + i) % 7 for i in range(keys)}, "step": k}


def main() -> None:
    path, keys = Path(sys.argv[1]), int(sys.argv[2])
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    while True:
        write_index(path, state(k, keys))
        k += 1


if __name__ == "__main__":
    main()
