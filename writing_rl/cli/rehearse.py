"""`writing-rl rehearse SCRIPT`: the training script's own job, through verl's real trainer, on this machine's CPU."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from writing_rl.cli.options import positive_int
from writing_rl.cpu import CPU_PLATFORM
from writing_rl.cpu.job import CpuJobShape
from writing_rl.cpu.job_log import MILESTONES
from writing_rl.cpu.progress import number, step_line
from writing_rl.cpu.rehearsal import (
    JobResult,
    PreparedJob,
    RehearsalError,
    RehearsalRequest,
    files_holding_key,
    new_out_dir,
    preflight,
    prepare,
    rollout_actor_gap,
    run_job,
)

MAX_ROLLOUT_GAP = 1e-3
"""Largest mean |log p_rollout - log p_actor| of a rollout after a weight sync: fp32 on both sides gives ~1e-6; a
rollout left on the previous step's weights is off by more (unless the learning rate barely moves the policy)."""
FAILED = 1


@contextlib.contextmanager
def _local_judge(wanted: bool) -> Iterator[Any]:
    if not wanted:
        yield None
        return
    from writing_rl.testing.server_process import JudgeServerProcess

    with JudgeServerProcess() as server:
        yield server


def verdict(job: PreparedJob, result: JobResult, steps_asked: int) -> tuple[bool, str]:
    """One line: passed, or the first check that failed, with the part of the job it concerns."""
    if result.error is not None:
        return False, f"rehearsal failed in the {result.error.part}: {result.error.message} (log: {job.log_path})"
    done = [s for s in result.steps if isinstance(s.get("step"), int)]
    if len(done) < steps_asked:
        return False, f"rehearsal failed: {len(done)} of {steps_asked} steps logged (log: {job.log_path})"
    gaps = [g for s in done if (g := rollout_actor_gap(s["data"])) is not None]
    if gaps and max(gaps) > MAX_ROLLOUT_GAP:
        return False, (f"rehearsal failed in the rollout: its log-probs differ from the actor's by up to "
                       f"{max(gaps):.2e} per token after the weight sync (more than {MAX_ROLLOUT_GAP:g})")
    failures = [number(s["data"], "judge/failure_rate") for s in done]
    if failures and all(f == 1.0 for f in failures):
        return False, "rehearsal failed in the judge: every judgement of every step failed (see judge/* in the log)"
    leaked = files_holding_key(job)
    if leaked:
        return False, f"rehearsal failed: the judge's API key is written in {', '.join(map(str, leaked[:3]))}"
    later = [t for s in done[1:] if (t := number(s["data"], "timing_s/step")) is not None]
    per_step = f", {sum(later) / len(later):.1f} s per step after the first" if later else ""
    return True, (f"rehearsal passed: {len(done)} steps in {result.wall_s:.0f} s (start-up {result.startup_s:.0f} s"
                  f"{per_step}); checkpoints and logs in {job.out_dir}")


def _quiet_cpu_process() -> None:
    """This process composes configs and writes models before the job starts: on the CPU platform, without the
    warnings verl and transformers print about accelerators and engines this machine lacks."""
    import os
    import warnings

    os.environ["VERL_PLATFORM"] = CPU_PLATFORM
    warnings.filterwarnings("ignore")
    import transformers

    import writing_rl.cpu

    writing_rl.cpu.activate()  # verl may have been imported before the variable was set
    transformers.utils.logging.disable_progress_bar()


def run_rehearse(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    _quiet_cpu_process()

    shape = CpuJobShape(steps=args.steps, batch_size=args.batch_size, group_size=args.group_size,
                        max_prompt_length=args.max_prompt_length, max_response_length=args.max_response_length,
                        learning_rate=args.lr)
    out_dir = args.out_dir or new_out_dir(args.script)
    if out_dir.exists() and any(out_dir.iterdir()):
        print(f"writing-rl rehearse: {out_dir} is not empty; give a new --out-dir", file=sys.stderr)
        return 2
    print(f"rehearsing {args.script} on CPU -> {out_dir}", flush=True)
    try:
        with _local_judge(args.judge == "local") as judge:
            job = prepare(RehearsalRequest(script=args.script, overrides=args.overrides, out_dir=out_dir,
                                           shape=shape, model=args.model,
                                           local_judge_url=judge.base_url if judge else None))
            if judge is not None:  # BRPO's GenRM prompt asks for two scores, Writing-RL's for a verdict
                judge.configure(mode="scores" if job.method == "brpo" else "verdict")
            for note in job.notes:
                print(f"  {note}", flush=True)
            if not args.skip_preflight:
                print("checks on the rehearsal's config (writing-rl preflight):", flush=True)
                preflight(job)
            with tqdm(total=len(MILESTONES), desc="starting verl", unit="stage", file=sys.stderr,
                      bar_format="{desc}: {n}/{total} {bar:20} {elapsed}") as bar:
                def on_milestone(label: str) -> None:
                    bar.set_description(label)
                    bar.update(1)

                def on_step(step: dict[str, Any]) -> None:
                    bar.write(step_line(step, shape.steps), file=sys.stdout)

                result = run_job(job, on_milestone=on_milestone, on_step=on_step)
    except RehearsalError as exc:
        first, *details = exc.message.strip().splitlines() or [""]
        for line in details:  # the verdict stays one line, last
            print(f"  {line.strip()}", flush=True)
        print(f"rehearsal failed in the {exc.part}: {first}", flush=True)
        return FAILED
    ok, line = verdict(job, result, shape.steps)
    print(line, flush=True)
    return 0 if ok else FAILED


def add_rehearse_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rehearse", help="run a training script's job for a few steps on this machine's CPU",
        description="A dress rehearsal before paying for GPU hours: the script's exact verl overrides (its "
                    "environment variables, its judge, its data, plus yours) run through verl's real trainer "
                    "(FSDP2 actor, weight sync, reward loop, checkpoints) on CPU, with a small model and small "
                    "sizes. Each step's metrics print as they come; the last line is the verdict. Nothing is "
                    "written to the script's RUN_DIR, index file, judge cache or checkpoints: everything goes "
                    "to --out-dir. Not rehearsed (verl 0.9.1 needs a GPU for them): vLLM, NCCL, multi-GPU "
                    "sharding, a critic (refused, with the reason), a reference model (the KL loss is turned off, "
                    "and the rehearsal says so).")
    parser.add_argument("script", type=Path, help="e.g. scripts/train_brpo.sh")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, as you would pass to the script")
    parser.add_argument("--model", type=Path, help="a local HF model folder to train (default: a tiny random "
                        "model with the policy's tokenizer if its folder is local, else with GPT-2's)")
    parser.add_argument("--judge", choices=("script", "local"), default="script",
                        help="script: the judge the script names (its keys, prompt files, limits, cache); "
                             "local: a loopback judge on 127.0.0.1 that costs nothing (default: script)")
    parser.add_argument("--steps", type=positive_int, default=2, help="training steps (default 2)")
    parser.add_argument("--batch-size", type=positive_int, default=2, help="prompts per step (default 2)")
    parser.add_argument("--group-size", type=positive_int, default=4, help="rollouts per prompt (default 4)")
    parser.add_argument("--max-response-length", type=positive_int, default=32,
                        help="tokens per rollout (default 32)")
    parser.add_argument("--max-prompt-length", type=positive_int,
                        help="prompt tokens (default: the script's data.max_prompt_length)")
    parser.add_argument("--lr", type=float, help="actor learning rate (default: the script's)")
    parser.add_argument("--out-dir", type=Path, help="a new folder for everything the job writes "
                        "(default: outputs/rehearse/<time>-<script>)")
    parser.add_argument("--skip-preflight", action="store_true",
                        help="start verl without running preflight's checks on the rehearsal's config first")
    parser.set_defaults(handler=run_rehearse)
