"""The checks of a Writing-RL or BRPO training script: compose its full verl config on CPU and check everything a
training run depends on (plugin, config keys, data, prompt files, judge, key) before a GPU is used."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from writing_rl.preflight.checks import Check, Skipped, Warned, check_api_key, check_judge_reachable, print_checks


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
    def __init__(self, overrides: list[str], skip_judge: bool = False, known_added: Sequence[str] = ()):
        self.overrides = overrides
        self.skip_judge = skip_judge
        self.known_added = set(known_added)
        """Overrides whose added keys are known to be read (e.g. a rehearsal's own): not reported."""
        self.config: Any = None
        self.settings: Any = None
        self._rows_by_path: dict[Path, list[dict[str, Any]]] = {}

    def _data_files(self, key: str) -> list[Path]:
        from writing_rl.verl_glue.config import config_paths

        return [Path(p) for p in config_paths(self.config.data[key])]

    def _rows(self, path: Path) -> list[dict[str, Any]]:
        """A data file's rows, read once for all the checks that look at them (raises DataError)."""
        from writing_rl.data.rows import read_rows

        if path not in self._rows_by_path:
            self._rows_by_path[path] = read_rows(path)
        return self._rows_by_path[path]

    @property
    def model_dir(self) -> Path:
        return Path(str(self.config.actor_rollout_ref.model.path)).expanduser()

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

    def trainer_fit(self) -> list[Check]:
        """The trainer, reward-model and concurrency settings our reward managers need (they refuse the same)."""
        from writing_rl.verl_glue.compatibility import trainer_fit_problems

        problems = trainer_fit_problems(self.config)
        if not problems:
            return [Check("verl trainer fit", True, "V1 trainer, trainer mode writing_rl, streaming rewards")]
        return [Check("verl trainer fit", False, p.message) if p.fatal else Warned("verl trainer fit", True, p.message)
                for p in problems]

    def verl_validate(self) -> Check:
        """verl's own `validate_config`, exactly as `main_ppo.main` runs it before Ray starts."""
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import validate_config

        model = self.model_dir
        if not (model / "config.json").is_file():
            return Skipped("verl validate_config", True,
                           f"actor_rollout_ref.model.path={model} is not a local folder with a config.json (a hub "
                           "name?), which verl's check reads; run preflight where the model is, or with "
                           "MODEL_PATH=<local copy>")
        config = copy.deepcopy(self.config)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                validate_config(config, use_reference_policy=need_reference_policy(config),
                                use_critic=need_critic(config))
        except Exception as exc:
            cause = exc.__cause__ or exc
            return Check("verl validate_config", False, f"verl rejects this config before training: "
                                                        f"{type(cause).__name__}: {str(cause).strip()[:600]}")
        return Check("verl validate_config", True, "passed (the check verl's main_ppo runs before Ray starts)")

    def reward_settings(self) -> Check:
        from writing_rl.verl_glue.settings import reward_settings_from_config

        try:
            self.settings = reward_settings_from_config(self.config)
        except (ValueError, TypeError) as exc:
            return Check("reward settings", False, str(exc))
        where = ("hosted by verl (judge_backend=verl)" if self.settings.judge_backend == "verl"
                 else f"at {self.settings.judge.base_url}")
        return Check("reward settings", True, f"experiment {self.settings.experiment!r}, judge "
                                              f"{self.settings.judge.model} {where}")

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
        from writing_rl.curriculum.index_file import IndexFileError, read_index
        from writing_rl.curriculum.ladders import ladder_lengths
        from writing_rl.curriculum.schedule import validate_state
        from writing_rl.data.rows import DataError

        path = self.settings.index_path()
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
            for path in self._data_files(key):
                rows, problems = validate_training_file(path, require_references=self.method == "writing_rl")
                checks.append(Check(f"data.{key}", not problems,
                                    f"{path}: {rows} rows" if not problems else "\n    " + "\n    ".join(problems)))
        return checks

    def validation_data(self) -> list[Check]:
        """BRPO validation rollouts are judged against the row's reference: without one they all score 0."""
        if self.method != "brpo" or int(self.config.trainer.test_freq) <= 0:
            return []
        from writing_rl.data.rows import DataError

        without = 0
        for path in self._data_files("val_files"):
            try:
                rows = self._rows(path)
            except DataError:
                return []  # reported by the data check
            without += sum(not ((r.get("reward_model") or {}).get("ground_truth") or {}).get("target") for r in rows)
        if not without:
            return []
        return [Warned("validation data", True,
                       f"{without} validation row(s) have no reference: BRPO validation scores them 0 every time "
                       "(trainer.test_freq > 0 spends rollouts on a constant); give them references or set "
                       "TEST_FREQ=-1")]

    def judge(self) -> list[Check]:
        if self.settings.judge_backend == "verl":
            return self.hosted_judge()
        checks = [check_api_key(self.settings.judge)]
        if self.skip_judge:
            return checks
        return [*checks, check_judge_reachable(self.settings.judge)]

    def hosted_judge(self) -> list[Check]:
        """JUDGE=verl: the judge model's folder and context length (nothing listens before the job starts)."""
        import json

        from writing_rl.data.prompt_lengths import prompt_tokens
        from writing_rl.data.rows import DataError
        from writing_rl.verl_glue.judge_request_length import longest_judge_request

        rm = self.config.reward.reward_model
        folder = Path(str(rm.model_path)).expanduser()
        checks: list[Check] = [Skipped("judge reachable", True, "JUDGE=verl: verl starts the judge with the job; the "
                                                                "first reward call checks it through verl's router")]
        if not (folder / "config.json").is_file():
            return [*checks, Check("judge model", False, f"reward.reward_model.model_path={folder} is not a local "
                                                         "folder with a config.json: verl serves it with vLLM and "
                                                         "every reward worker loads its tokenizer (GENRM_PATH)")]
        try:
            prompt_tokens([{"role": "user", "content": "x"}], str(folder))
        except Exception as exc:
            return [*checks, Check("judge model", False, f"reward.reward_model.model_path={folder}: its tokenizer "
                                                         f"does not load ({type(exc).__name__}: {exc})")]
        checks.append(Check("judge model", True, f"{folder}: config.json and tokenizer"))
        positions = json.loads((folder / "config.json").read_text()).get("max_position_embeddings")
        limit = int(rm.rollout.max_model_len or positions or 0)
        if positions and limit > int(positions):
            checks.append(Warned("judge context", True, f"reward.reward_model.rollout.max_model_len={limit} is more "
                                                        f"than the model's max_position_embeddings={positions}: vLLM "
                                                        "refuses to start unless the model supports it"))
        try:
            rows = [row for key in ("train_files", "val_files") for path in self._data_files(key)
                    for row in self._rows(path)]
        except DataError:
            return checks  # reported by the data check
        longest = longest_judge_request(rows, self.settings, str(folder), int(self.config.data.max_response_length))
        if longest is None or not limit:
            return checks
        if longest.tokens > limit:
            return [*checks, Check("judge context", False, f"the longest judge request (row {longest.row_id}: prompt "
                                                           "file, texts, responses at data.max_response_length and "
                                                           f"judge.max_tokens) is {longest.tokens} tokens, more than "
                                                           f"reward.reward_model.rollout.max_model_len={limit}: raise "
                                                           f"GENRM_MAX_LEN to at least {longest.tokens}, or lower "
                                                           "JUDGE_MAX_TOKENS or MAX_RESPONSE_LENGTH")]
        return [*checks, Check("judge context", True, f"the longest judge request, {longest.tokens} tokens (row "
                                                      f"{longest.row_id}), fits max_model_len={limit}")]

    def added_keys(self) -> list[Check]:
        """`+key=value` overrides that verl's config does not know: Hydra accepts them and verl ignores them."""
        from writing_rl.verl_glue.config_keys import unknown_added_keys

        return [Check("added config keys", False, problem) if certain else Warned("added config keys", True, problem)
                for problem, certain in unknown_added_keys([o for o in self.overrides if o not in self.known_added])]

    def split_overlap(self) -> list[Check]:
        """A validation id that is also a training id measures memorisation, not writing."""
        from writing_rl.data.rows import DataError

        def ids(key: str) -> set[str]:
            return {str((r.get("extra_info") or {}).get("index")) for path in self._data_files(key)
                    for r in self._rows(path)}

        try:
            shared = sorted(ids("train_files") & ids("val_files"))
        except DataError:
            return []  # reported by the data check
        if not shared:
            return []
        return [Check("train/validation split", False,
                      f"{len(shared)} id(s) are in both data.train_files and data.val_files: {shared[:10]} (an old "
                      "test.parquet from another build? rebuild with `writing-rl data build --test-size N`)")]

    def prompt_lengths(self) -> list[Check]:
        """Prompts longer than data.max_prompt_length (policy tokenizer + chat template, as verl counts them)."""
        from writing_rl.data.prompt_lengths import overlong_prompts
        from writing_rl.data.rows import DataError

        model = self.model_dir
        limit = int(self.config.data.max_prompt_length)
        if not model.is_dir():
            return [Skipped("prompt lengths", True, f"actor_rollout_ref.model.path={model} is not a local folder; "
                                                    "its tokenizer is needed to count prompt tokens")]
        problems: list[str] = []
        for key in ("train_files", "val_files"):
            for path in self._data_files(key):
                try:
                    rows = self._rows(path)
                except DataError:
                    continue  # reported by the data check
                problems += [f"data.{key} {p}" for p in overlong_prompts(path, rows, str(model), limit)]
        if not problems:
            return [Check("prompt lengths", True, f"every prompt fits data.max_prompt_length={limit}")]
        action = ("verl drops them (data.filter_overlong_prompts)" if self.config.data.get("filter_overlong_prompts")
                  else "verl's agent loop cuts them")
        return [Check("prompt lengths", False, f"longer than data.max_prompt_length={limit}, so {action}; raise "
                                               "MAX_PROMPT_LENGTH or shorten them:\n    " + "\n    ".join(problems))]

    def history(self) -> list[Check]:
        """Bad lines of the promotion history are skipped in training; say so before it starts."""
        if self.method != "writing_rl":
            return []
        from writing_rl.curriculum.index_file import history_path, scan_history

        problems = scan_history(history_path(self.settings.index_path())).problems
        if not problems:
            return []
        return [Warned("index history", True, "\n    " + "\n    ".join(problems[:10]))]

    def run(self) -> list[Check]:
        results: list[Check] = []
        steps: list[Callable[[], Check | list[Check]]] = [
            self.plugin, self.compose, self.names, self.added_keys, self.trainer_fit, self.verl_validate,
            self.reward_settings, self.templates, self.data, self.split_overlap, self.prompt_lengths,
            self.validation_data, self.index, self.history, self.judge]
        for step in steps:
            outcome = step()
            batch = outcome if isinstance(outcome, list) else [outcome]
            results += batch
            print_checks(batch)
            if step in (self.compose, self.reward_settings) and not all(c.ok for c in batch):
                break  # later checks need the config
        return results
