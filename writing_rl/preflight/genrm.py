"""Preflight for the GenRM training scripts: `train_genrm_sft.sh` (verl's SFT trainer, `sft_trainer_engine.yaml`)
and `train_genrm_rl.sh` (verl's `ppo_trainer.yaml`, naive reward manager, our custom reward function).

A script declares which checks it needs in the first line it prints for preflight (`#preflight=genrm-sft` or
`#preflight=genrm-rl`); neither uses a judge, so none of the judge checks run.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from writing_rl.preflight.checks import Check, print_checks
from writing_rl.preflight.training import Preflight, Skipped, Warned

KIND_PREFIX = "#preflight="
SFT_ROLES = ("system", "user", "assistant")
MAX_REPORTED = 10


def declared_kind(overrides: list[str]) -> tuple[str | None, list[str]]:
    """The check set a script declares (None: not a GenRM script) and its overrides without the declaration."""
    if overrides and overrides[0].startswith(KIND_PREFIX):
        return overrides[0][len(KIND_PREFIX):].strip(), overrides[1:]
    return None, overrides


def _paths(value: Any) -> list[Path]:
    from writing_rl.verl_glue.config import config_paths

    return [Path(p) for p in config_paths(value)]


def _listed(problems: list[str]) -> str:
    shown = problems[:MAX_REPORTED]
    more = f"\n    ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    return "\n    " + "\n    ".join(shown) + more


def sft_message_problems(messages: Any, messages_key: str) -> list[str]:
    """What verl's multi-turn SFT dataset would refuse or silently learn nothing from, for one row."""
    if hasattr(messages, "tolist"):
        messages = messages.tolist()
    if not isinstance(messages, list | tuple) or not messages:
        return [f"'{messages_key}' must be a non-empty list of {{role, content}} messages"]
    problems = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            problems.append(f"{messages_key}[{i}] is not an object {{role, content}}")
            continue
        if message.get("role") not in SFT_ROLES:
            problems.append(f"{messages_key}[{i}].role={message.get('role')!r}; use one of {list(SFT_ROLES)}")
        if not isinstance(message.get("content"), str) or not message["content"].strip():
            problems.append(f"{messages_key}[{i}].content must be a non-empty string")
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") != "assistant":
        problems.append(f"the last message is {last.get('role')!r}, not 'assistant': only assistant turns are "
                        "learned, so the trace must come last")
    return problems


def _hint(message: str) -> str:
    if "max_length" in message:
        return " (raise MAX_LENGTH, or TRUNCATION=left|right)"
    if "each turn separately" in message:
        return " (the chat template renders a turn differently in context; IGNORE_INPUT_IDS_MISMATCH=True accepts it)"
    if "processor is needed" in message:
        return " (a column named images or videos makes verl read the row as multimodal; rename it)"
    return ""


class GenrmSftPreflight:
    """verl's SFT trainer: its config, the dataclasses it builds from it, and every row through its own dataset."""

    def __init__(self, overrides: list[str]):
        self.overrides = overrides
        self.config: Any = None
        self.tokenizer: Any = None

    def compose(self) -> Check:
        from writing_rl.verl_glue.config import compose_trainer_config

        try:
            self.config = compose_trainer_config(self.overrides, config_name="sft_trainer_engine")
        except Exception as exc:
            return Check("verl config composes", False, f"{type(exc).__name__}: {exc}")
        return Check("verl config composes", True,
                     f"{len(self.overrides)} overrides on verl's sft_trainer_engine.yaml")

    def verl_configs(self) -> list[Check]:
        """The typed configs `SFTTrainer._build_config` makes (the model's needs the local folder: tokenizer,
        config.json), so a bad value fails here and not after torchrun has started every GPU."""
        from verl.utils.config import omega_conf_to_dataclass

        checks: list[Check] = []
        for key in ("engine", "optim", "checkpoint", "profiler"):
            try:
                omega_conf_to_dataclass(self.config[key])
            except Exception as exc:
                checks.append(Check(f"verl {key} config", False, self._refused(key, exc)))
        if not checks:
            checks.append(Check("verl configs", True, "engine, optim, checkpoint and profiler build as verl's "
                                                      "SFTTrainer builds them"))
        model = Path(str(self.config.model.path)).expanduser()
        if not (model / "config.json").is_file():
            checks.append(Skipped("verl model config", True, f"model.path={model} is not a local folder with a "
                                                             "config.json; run preflight where the model is, or "
                                                             "with MODEL_PATH=<local copy>"))
        else:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    self.tokenizer = omega_conf_to_dataclass(self.config.model).tokenizer
            except Exception as exc:
                checks.append(Check("verl model config", False, self._refused("model", exc)))
            else:
                checks.append(Check("verl model config", True, f"{model}: config and tokenizer load"))
        return checks

    def _refused(self, key: str, exc: Exception) -> str:
        """verl's config classes often refuse with a bare assert: name the section's overrides too."""
        cause = exc.__cause__ or exc
        target = self.config[key].get("_target_", key)
        given = [o for o in self.overrides if o.lstrip("+").startswith(f"{key}.")]
        return (f"verl's {target} refuses it: {type(cause).__name__}: {str(cause).strip()[:400] or 'a check failed'}"
                f"; overrides of this section: {', '.join(given) or 'none'}")

    def batch_sizes(self) -> list[Check]:
        data = self.config.data
        if data.use_dynamic_bsz and int(data.max_token_len_per_gpu) < int(data.max_length):
            return [Check("batch sizes", False, f"data.max_token_len_per_gpu={data.max_token_len_per_gpu} is below "
                                                f"data.max_length={data.max_length}: a full-length example fits no "
                                                "micro-batch; raise MAX_TOKEN_LEN_PER_GPU")]
        return []

    def data(self) -> list[Check]:
        from writing_rl.data.rows import DataError, read_rows

        data = self.config.data
        checks: list[Check] = []
        messages: dict[str, set[str]] = {"train_files": set(), "val_files": set()}
        for key in ("train_files", "val_files"):
            for path in _paths(data[key]):
                try:
                    rows = read_rows(path)
                except DataError as exc:
                    checks.append(Check(f"data.{key}", False, str(exc)))
                    continue
                if not rows or data.messages_key not in rows[0]:
                    missing = "no rows" if not rows else f"no '{data.messages_key}' column (data.messages_key)"
                    checks.append(Check(f"data.{key}", False, f"{path}: {missing}"))
                    continue
                messages[key].update(json.dumps(row.get(data.messages_key), sort_keys=True, default=str)
                                     for row in rows)
                problems = [f"{path}, row {n}: {p}" for n, row in enumerate(rows, start=1)
                            for p in sft_message_problems(row.get(data.messages_key), data.messages_key)]
                if not problems:
                    problems = self._dataset_problems(path)
                ok = not problems
                tokenized = "" if self.tokenizer is not None else " (not tokenized: no local model folder)"
                checks.append(Check(f"data.{key}", ok, f"{path}: {len(rows)} rows{tokenized}" if ok
                                    else _listed(problems)))
                if key == "train_files" and ok and len(rows) < int(data.train_batch_size):
                    checks.append(Check("batch sizes", False, f"{path}: {len(rows)} rows, fewer than "
                                                              f"data.train_batch_size={data.train_batch_size}: verl "
                                                              "drops the incomplete batch, so nothing would train"))
        shared = messages["train_files"] & messages["val_files"]
        if shared:  # as the RL script's check: validation on training rows measures memory
            checks.append(Check("train/validation split", False,
                                f"{len(shared)} of the validation rows are also training rows (data.val_files "
                                f"{data.val_files} vs data.train_files {data.train_files}); build the validation "
                                "file from held-out pairs (`writing-rl data pairs --test-size N`, then `genrm "
                                "synthesize --pairs DIR/test.parquet`)"))
        return checks

    def _dataset_problems(self, path: Path) -> list[str]:
        """Every row through verl's own MultiTurnSFTDataset with the model's tokenizer: its length check
        (data.truncation=error raises mid-training) and its per-turn vs whole-chat tokenization check."""
        if self.tokenizer is None:
            return []
        from tqdm import tqdm
        from verl.trainer.sft_trainer import create_sft_dataset

        problems = []
        with contextlib.redirect_stdout(io.StringIO()):
            dataset = create_sft_dataset([str(path)], self.config.data, self.tokenizer, None)
            for index in tqdm(range(len(dataset)), desc=f"verl's SFT dataset on {path.name}", unit="row",
                              leave=False):
                try:
                    dataset[index]
                except Exception as exc:
                    problems.append(f"{path}, row {index + 1}: {type(exc).__name__}: "
                                    f"{(str(exc).strip() or 'no message').splitlines()[0]}{_hint(str(exc))}")
        return problems

    def run(self) -> list[Check]:
        results: list[Check] = []
        for step in (self.compose, self.verl_configs, self.batch_sizes, self.data):
            outcome = step()
            batch = outcome if isinstance(outcome, list) else [outcome]
            results += batch
            print_checks(batch)
            if step == self.compose and not all(c.ok for c in batch):
                break
        return results


def adjacent_order_problem(rows: list[dict[str, Any]]) -> str | None:
    """The first place where rows 2k+1 and 2k+2 (1-based) are not the two orders of one pair (None: all are)."""
    if len(rows) % 2:
        return f"{len(rows)} rows, an odd number: a pair lacks one of its orders"
    for first in range(0, len(rows), 2):
        a, b = rows[first]["extra_info"], rows[first + 1]["extra_info"]
        if a["pair_id"] != b["pair_id"] or {a.get("preferred"), b.get("preferred")} != {"A", "B"}:
            return (f"rows {first + 1} and {first + 2} are not the two orders of one pair (pair ids "
                    f"{a['pair_id']!r}, {b['pair_id']!r})")
    return None


def rl_row_problems(row: dict[str, Any]) -> list[str]:
    problems = []
    prompt = row.get("prompt")
    if hasattr(prompt, "tolist"):
        prompt = prompt.tolist()
    if not isinstance(prompt, list | tuple) or not prompt or not all(
            isinstance(m, dict) and m.get("role") and isinstance(m.get("content"), str) for m in prompt):
        problems.append("prompt must be a non-empty list of chat messages {role, content}")
    reward_model = row.get("reward_model")
    ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    if not isinstance(ground_truth, dict) or ground_truth.get("preferred") not in ("A", "B"):
        problems.append(f"reward_model.ground_truth={ground_truth!r} must be {{'preferred': 'A' | 'B'}} (build the "
                        "rows with `writing-rl data genrm-rl`)")
    extra_info = row.get("extra_info")
    if not isinstance(extra_info, dict) or not extra_info.get("pair_id"):
        problems.append("extra_info.pair_id is missing (both orders of a pair share it)")
    return problems


class GenrmRlPreflight:
    """verl's PPO config with the naive reward manager and our GenRM reward; checks reused from `Preflight`."""

    def __init__(self, overrides: list[str]):
        self.base = Preflight(overrides, skip_judge=True)

    @property
    def config(self) -> Any:
        return self.base.config

    def step_pairs(self) -> list[Check]:
        """Per-step GenRM metrics: the trainer mode that logs them, and both orders of a pair in one step."""
        from writing_rl.verl_glue.genrm_trainer import GENRM_TRAINER_MODE, genrm_reward_problem

        c = self.config
        mode = c.trainer.v1.get("trainer_mode") if c.trainer.get("use_v1", True) else "legacy (trainer.use_v1=false)"
        checks: list[Check] = []
        if mode != GENRM_TRAINER_MODE:
            checks.append(Check("trainer mode", False, f"trainer.v1.trainer_mode={mode}: accuracy and both-order "
                                                       f"consistency are logged per step only in trainer mode "
                                                       f"{GENRM_TRAINER_MODE}; set trainer.v1.trainer_mode="
                                                       f"{GENRM_TRAINER_MODE} (and trainer.use_v1=true)"))
        elif problem := genrm_reward_problem(c):
            checks.append(Check("trainer mode", False, problem))
        if c.data.shuffle:
            checks.append(Check("both orders in one step", False, "data.shuffle=True: verl's RandomSampler would "
                                                                  "split the two orders of a pair across steps; "
                                                                  "set data.shuffle=False (`writing-rl data "
                                                                  "genrm-rl --seed` already shuffles the pairs)"))
        batch = int(c.data.train_batch_size)
        if batch % 2:
            checks.append(Check("both orders in one step", False, f"data.train_batch_size={batch} is odd: a step "
                                                                  "would end between the two orders of a pair; set "
                                                                  "TRAIN_BATCH_SIZE to an even number"))
        gen_batch = c.data.get("gen_batch_size")
        if gen_batch not in (None, 1) and int(gen_batch) % 2:
            checks.append(Check("both orders in one step", False, f"data.gen_batch_size={gen_batch} is odd: set it "
                                                                  "to an even number, or leave it unset"))
        if not checks:
            checks.append(Check("per-step metrics", True, f"trainer mode {GENRM_TRAINER_MODE}, data.shuffle=False, "
                                                          f"even data.train_batch_size={batch}"))
        return checks

    def reward_function(self) -> Check:
        """verl's own loader, then one call per case, so a wrong path, name or signature fails here."""
        from verl.trainer.ppo.reward import get_custom_reward_fn

        manager = str(self.config.reward.reward_manager.name)
        if manager in ("writing_rl", "brpo"):
            return Check("reward function", False, f"reward.reward_manager.name={manager} judges with an LLM; the "
                                                   "GenRM's verifiable reward runs in verl's naive manager")
        try:
            reward = get_custom_reward_fn(self.config)
            if reward is None:
                return Check("reward function", False, "reward.custom_reward_function.path is not set; set it to "
                                                       "pkg://writing_rl.genrm.reward")
            got = [reward(data_source="genrm_pairwise", solution_str=text, ground_truth={"preferred": "A"},
                          extra_info={"pair_id": "check"}) for text in ("\\boxed{8, 3}", "\\boxed{3, 8}", "none")]
            scores = [g["score"] if isinstance(g, dict) else g for g in got]
        except Exception as exc:
            return Check("reward function", False, f"{type(exc).__name__}: {exc}")
        fn = self.config.reward.custom_reward_function
        if not scores[0] > scores[1] > scores[2]:
            return Check("reward function", False, f"{fn.path}:{fn.name} gives {scores} for a right, a wrong and a "
                                                   "malformed answer; expected right > wrong > malformed")
        return Check("reward function", True, f"{fn.path}:{fn.name} via verl's loader (right {scores[0]:g}, wrong "
                                              f"{scores[1]:g}, malformed {scores[2]:g}) in manager {manager}")

    def data(self) -> list[Check]:
        from writing_rl.data.rows import DataError

        checks: list[Check] = []
        pair_ids: dict[str, set[str]] = {}
        for key in ("train_files", "val_files"):
            pair_ids[key] = set()
            for path in _paths(self.config.data[key]):
                try:
                    rows = self.base._rows(path)
                except DataError as exc:
                    checks.append(Check(f"data.{key}", False, str(exc)))
                    continue
                problems = [f"{path}, row {n}: {p}" for n, row in enumerate(rows, start=1)
                            for p in rl_row_problems(row)]
                checks.append(Check(f"data.{key}", not problems, f"{path}: {len(rows)} rows" if not problems
                                    else _listed(problems)))
                sides = Counter(str(r["extra_info"]["pair_id"]) for r in rows
                                if isinstance(r.get("extra_info"), dict) and r["extra_info"].get("pair_id"))
                pair_ids[key] |= set(sides)
                if problems:
                    continue
                if key == "train_files" and (unpaired := adjacent_order_problem(rows)):
                    checks.append(Check("both orders in one step", False, f"{path}: {unpaired}; rebuild it with "
                                                                          "`writing-rl data genrm-rl`, which writes "
                                                                          "each pair's two orders adjacent"))
                one_order = sorted(p for p, n in sides.items() if n < 2)
                if one_order:
                    checks.append(Warned("both orders", True, f"{path}: {len(one_order)} pair(s) with one order only "
                                                              f"({one_order[:5]}): position bias is not balanced "
                                                              "for them"))
        shared = sorted(pair_ids["train_files"] & pair_ids["val_files"])
        if shared:
            checks.append(Check("train/validation split", False, f"{len(shared)} pair id(s) in both data.train_files "
                                                                 f"and data.val_files: {shared[:10]}"))
        return checks

    def run(self) -> list[Check]:
        results: list[Check] = []
        steps: list[Callable[[], Check | list[Check]]] = [
            self.base.compose, self.base.names, self.base.added_keys, self.base.verl_validate, self.step_pairs,
            self.reward_function, self.data, self.base.prompt_lengths]
        for step in steps:
            outcome = step()
            batch = outcome if isinstance(outcome, list) else [outcome]
            results += batch
            print_checks(batch)
            if step == self.base.compose and not all(c.ok for c in batch):
                break
        return results


CHECK_SETS = {"genrm-sft": GenrmSftPreflight, "genrm-rl": GenrmRlPreflight}


def genrm_preflight(overrides: list[str]) -> list[Check] | None:
    """The GenRM checks when the script declares them; None for any other script."""
    kind, rest = declared_kind(overrides)
    if kind is None:
        return None
    if kind not in CHECK_SETS:
        check = Check("read script", False, f"declares {KIND_PREFIX}{kind}; known: {sorted(CHECK_SETS)}")
        print_checks([check])
        return [check]
    return CHECK_SETS[kind](rest).run()
