"""`writing-rl preflight SCRIPT`: the checks of `writing_rl.preflight` on a training script's own overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

from writing_rl.preflight.genrm import genrm_preflight
from writing_rl.preflight.training import Preflight, script_overrides


def run_preflight(args: argparse.Namespace) -> int:
    try:
        overrides = script_overrides(args.script, args.overrides)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"[FAIL] read script: {exc}")
        return 1
    results = genrm_preflight(overrides)
    if results is None:
        results = Preflight(overrides, skip_judge=args.skip_judge).run()
    failed = sum(not c.ok for c in results)
    print("preflight passed: ready to train" if not failed else f"preflight failed: {failed} problem(s)")
    return 1 if failed else 0


def add_preflight_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight", help="check a training script's config, data, prompts and judge on CPU",
        description="Compose the full verl config the script would run (with verl's own Hydra config) and "
                    "check the plugin, config keys, data files, prompt files, judge and API key variable, "
                    "before any GPU is used. Extra arguments are passed to the script as Hydra overrides.")
    parser.add_argument("script", type=Path, help="e.g. scripts/train_brpo.sh")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, as you would pass to the script")
    parser.add_argument("--skip-judge", action="store_true", help="do not contact the judge")
    parser.set_defaults(handler=run_preflight)
