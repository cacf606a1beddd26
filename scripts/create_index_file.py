"""Create running_file/index_<experiment>.json from a train parquet (same as `writing-rl index create`).

An existing index keeps every rung, so re-running a training script continues its curriculum; ids of the
data it lacks are added at rung 0.
"""

import argparse
import sys
from pathlib import Path

from writing_rl.curriculum.index_creation import create_index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="train parquet file(s)")
    parser.add_argument("--run-dir", type=Path, default=Path("running_file"))
    parser.add_argument("--force", action="store_true", help="overwrite an existing index (all rungs to 0)")
    args = parser.parse_args()
    print(create_index(args.data, args.experiment, args.run_dir, args.force)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
