"""What our verl plugin costs every verl process: `python -c "import verl"` with the plugin (verl's default,
VERL_USE_EXTERNAL_PLUGINS=auto) against without it (=none), alternating, several runs each. Prints CPU seconds
(user + system), peak memory (max RSS) and stderr lines, medians, and the ratio with / without.

    .venv/bin/python benchmarks/plugin_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile


def one_run(policy: str) -> tuple[float, float, int]:
    """(CPU seconds, max RSS in MB, stderr lines) of one fresh `import verl`."""
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": policy}
    env.pop("VERL_PLATFORM", None)
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen([sys.executable, "-c", "import verl"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"import verl failed with VERL_USE_EXTERNAL_PLUGINS={policy}")
        stderr.seek(0)
        lines = len(stderr.read().splitlines())
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, int]]] = {"auto": [], "none": []}
    for _ in range(args.runs):
        for policy in results:
            results[policy].append(one_run(policy))
    medians = {policy: [statistics.median(values) for values in zip(*runs, strict=True)]
               for policy, runs in results.items()}
    print(f"import verl, median of {args.runs} runs each (alternating)")
    print(f"{'plugin':<28}{'CPU s':>8}{'max RSS MB':>12}{'stderr lines':>14}")
    for policy, label in (("auto", "with writing-rl's plugin"), ("none", "without (=none)")):
        cpu, rss, lines = medians[policy]
        print(f"{label:<28}{cpu:>8.2f}{rss:>12.0f}{lines:>14.0f}")
    (cpu_a, rss_a, _), (cpu_n, rss_n, _) = medians["auto"], medians["none"]
    print(f"{'ratio with / without':<28}{cpu_a / cpu_n:>8.2f}{rss_a / rss_n:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
