"""`writing-rl doctor`: is this installation able to train? Each check says how to fix itself.

verl swallows plugin import errors (DEBUG log only), so the plugin is checked where verl
really loads it: a fresh Python process and a Ray worker, both through plain `import verl`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable

from writing_rl.cli.options import add_judge_options, judge_settings_from_args
from writing_rl.preflight.checks import Check, check_api_key, check_judge_reachable, print_checks

_REPORT_SNIPPET = (
    "import json, verl\n"
    "from writing_rl.plugin import registration_report\n"
    "print('REPORT=' + json.dumps(registration_report()))\n"
)


def check_versions() -> Check:
    try:
        verl_version = importlib.metadata.version("verl")
    except importlib.metadata.PackageNotFoundError:
        return Check("verl installed", False, 'verl is missing: pip install "verl[verl-core]==0.9.1"')
    ok = verl_version == "0.9.1"
    hint = "" if ok else ' (writing-rl is built for 0.9.1: pip install "verl[verl-core]==0.9.1")'
    return Check("verl installed", ok, f"verl {verl_version}{hint}")


def check_entry_point() -> Check:
    names = [ep.value for ep in importlib.metadata.entry_points(group="verl.plugins")]
    ok = "writing_rl.plugin" in names
    return Check("entry point verl.plugins", ok,
                 "writing_rl.plugin" if ok else "not found: reinstall with pip install -e . (entry points "
                 "are written at install time)")


def _report_check(name: str, report: dict[str, list[str]] | None, error: str = "") -> Check:
    if report is None:
        return Check(name, False, error)
    if report["missing"]:
        return Check(name, False, "missing " + ", ".join(report["missing"]) +
                     "; run `python -c 'import writing_rl.plugin'` to see the import error")
    return Check(name, True, ", ".join(report["registered"]) or "nothing expected")


def check_fresh_process() -> Check:
    proc = subprocess.run([sys.executable, "-c", _REPORT_SNIPPET], capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("REPORT="):
            return _report_check("registered in a fresh process", json.loads(line[len("REPORT="):]))
    return _report_check("registered in a fresh process", None,
                         f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}")


def check_ray_worker() -> Check:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        @ray.remote(num_cpus=0)
        def report() -> dict[str, list[str]]:
            import verl  # noqa: F401  (loads plugins exactly as verl's own workers do)

            from writing_rl.plugin import registration_report

            return registration_report()

        return _report_check("registered in a Ray worker", ray.get(report.remote(), timeout=300))
    except Exception as exc:
        return _report_check("registered in a Ray worker", None, f"{type(exc).__name__}: {exc}")
    finally:
        if started_here:
            ray.shutdown()


def check_judge(args: argparse.Namespace) -> list[Check]:
    try:
        settings = judge_settings_from_args(args)
    except ValueError as exc:
        return [Check("judge settings", False, str(exc))]
    return [check_api_key(settings), check_judge_reachable(settings)]


def run_doctor(args: argparse.Namespace) -> int:
    steps: list[Callable[[], Check | list[Check]]] = [check_versions, check_entry_point, check_fresh_process]
    if not args.skip_ray:
        steps.append(check_ray_worker)
    if not args.skip_judge:
        steps.append(lambda: check_judge(args))
    failed = 0
    for step in steps:
        results = step()
        batch = results if isinstance(results, list) else [results]
        print_checks(batch)
        failed += sum(not check.ok for check in batch)
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


def add_doctor_command(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check the installation, plugin registration and judge reachability",
        description="Check verl, the plugin's registrations in a fresh process and in a Ray worker, "
                    "the API key variable and the judge endpoint. Exit code 1 if anything fails.")
    doctor.add_argument("--skip-ray", action="store_true", help="do not start a local Ray")
    doctor.add_argument("--skip-judge", action="store_true", help="do not contact the judge")
    add_judge_options(doctor)
    doctor.set_defaults(handler=run_doctor)
