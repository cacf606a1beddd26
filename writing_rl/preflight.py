"""`writing-rl preflight SCRIPT`: compose the script's full verl config on CPU and check everything a
training run depends on (plugin, config keys, data, prompt files, judge, key) before a GPU is used."""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from writing_rl.doctor import Check, check_judge_reachable, print_checks


def script_overrides(script: Path, extra: list[str]) -> list[str]:
    """The Hydra overrides the script would pass to verl (it prints them when WRITING_RL_PRINT_ARGS=1)."""
    if not script.exists():
        raise FileNotFoundError(f"{script}: no such script")
    proc = subprocess.run(["bash", str(script), *extra], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "WRITING_RL_PRINT_ARGS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"{script} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return [line for line in proc.stdout.splitlines() if line.strip()]


class Preflight:
    def __init__(self, overrides: list[str], skip_judge: bool = False):
        self.overrides = overrides
        self.skip_judge = skip_judge
        self.config: Any = None
        self.settings: Any = None

    def plugin(self) -> Check:
        import verl  # noqa: F401  (loads the plugin exactly as training will)

        from writing_rl.plugin import registration_report

        report = registration_report()
        return Check("plugin registered", not report["missing"],
                     ", ".join(report["registered"]) if not report["missing"] else
                     "missing " + ", ".join(report["missing"]) + " (python -c 'import writing_rl.plugin')")

    def compose(self) -> Check:
        from writing_rl.verl_glue.config import compose_trainer_config

        try:
            self.config = compose_trainer_config(self.overrides)
        except Exception as exc:
            return Check("verl config composes", False, f"{type(exc).__name__}: {exc}")
        return Check("verl config composes", True, f"{len(self.overrides)} overrides on verl's ppo_trainer.yaml")

    def names(self) -> Check:
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        from verl.trainer.ppo.reward import resolve_reward_manager_cls
        from verl.trainer.ppo.v1.trainer_base import get_trainer_cls

        c = self.config
        try:
            manager = resolve_reward_manager_cls(c).__name__
            if c.algorithm.adv_estimator not in ("gae", "grpo"):
                get_adv_estimator_fn(c.algorithm.adv_estimator)
            get_trainer_cls(c.trainer.v1.trainer_mode)
        except (ValueError, KeyError) as exc:
            return Check("names resolve", False, str(exc))
        return Check("names resolve", True, f"reward manager {manager}, estimator {c.algorithm.adv_estimator}, "
                                            f"trainer mode {c.trainer.v1.trainer_mode}")

    def reward_settings(self) -> Check:
        from writing_rl.verl_glue.settings import reward_settings_from_config

        try:
            self.settings = reward_settings_from_config(self.config)
        except (ValueError, TypeError) as exc:
            return Check("reward settings", False, str(exc))
        return Check("reward settings", True, f"experiment {self.settings.experiment!r}, judge "
                                              f"{self.settings.judge.model} at {self.settings.judge.base_url}")

    @property
    def method(self) -> str:
        return str(self.config.reward.reward_manager.name)

    def templates(self) -> Check:
        from writing_rl.prompts import TemplateError, load_template

        if self.method == "writing_rl":
            w = self.settings.writing_rl
            wanted = [(w.template, "verdict"), (w.criteria_template, "verdict")]
        else:
            wanted = [(self.settings.brpo.template, "scores")]
        try:
            paths = [str(load_template(name, expect_output=output).path) for name, output in wanted]
        except TemplateError as exc:
            return Check("prompt files", False, str(exc))
        return Check("prompt files", True, ", ".join(paths))

    def index(self) -> list[Check]:
        """Writing-RL only: the index file, if it exists already, must fit the training data."""
        if self.method != "writing_rl":
            return []
        from writing_rl.curriculum.index_file import IndexFileError, index_path, read_index
        from writing_rl.curriculum.ladders import ladder_lengths
        from writing_rl.curriculum.schedule import validate_state
        from writing_rl.data.rows import DataError

        path = index_path(self.settings.writing_rl.run_dir, self.settings.experiment)
        try:
            ladders = ladder_lengths(self.settings.train_files)
        except DataError as exc:
            return [Check("index file", False, str(exc))]
        if not path.exists():
            return [Check("index file", True, f"{path} will be created with {len(ladders)} ids at rung 0")]
        try:
            state = read_index(path)
            validate_state(state, ladders, path)
        except IndexFileError as exc:
            return [Check("index file", False, str(exc))]
        missing = sorted(set(ladders) - set(state))
        if missing:
            return [Check("index file", False, f"{path}: ids of the training data missing from it: {missing[:10]}"
                                               f"{' ...' if len(missing) > 10 else ''} (run `writing-rl index "
                                               "create` or add them at rung 0)")]
        return [Check("index file", True, f"{path}: {len(state)} ids, mean rung "
                                          f"{sum(state.values()) / max(1, len(state)):.2f}")]

    def data(self) -> list[Check]:
        from writing_rl.data.validate import validate_training_file

        checks = []
        for key in ("train_files", "val_files"):
            files = self.config.data[key]
            for path in [files] if isinstance(files, str) else list(files):
                rows, problems = validate_training_file(path, require_references=self.method == "writing_rl")
                checks.append(Check(f"data.{key}", not problems,
                                    f"{path}: {rows} rows" if not problems else "\n    " + "\n    ".join(problems)))
        return checks

    def judge(self) -> list[Check]:
        judge = self.settings.judge
        local = urlparse(judge.base_url).hostname in ("127.0.0.1", "localhost", "::1")
        key_ok = judge.api_key is not None or local
        checks = [Check(f"API key variable {judge.api_key_env}", key_ok,
                        "set" if judge.api_key else "not set (a loopback judge needs none)" if local
                        else f"not set: export {judge.api_key_env}=... before training")]
        if self.skip_judge:
            return checks

        return [*checks, check_judge_reachable(judge)]

    def run(self) -> list[Check]:
        results: list[Check] = []
        steps: list[Callable[[], Check | list[Check]]] = [self.plugin, self.compose, self.names,
                                                          self.reward_settings, self.templates, self.data, self.index,
                                                          self.judge]
        for step in steps:
            outcome = step()
            batch = outcome if isinstance(outcome, list) else [outcome]
            results += batch
            print_checks(batch)
            if step in (self.compose, self.reward_settings) and not all(c.ok for c in batch):
                break  # later checks need the config
        return results


def run_preflight(args: argparse.Namespace) -> int:
    try:
        overrides = script_overrides(args.script, args.overrides)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"[FAIL] read script: {exc}")
        return 1
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
