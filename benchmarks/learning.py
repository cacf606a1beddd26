"""Does training through the judge teach the policy anything? Runs of verl's real trainer on this CPU (the
`writing-rl rehearse` machinery: FSDP2 actor, weight sync into the CPU rollout, our reward managers), against
loopback judges whose preference is known (`writing_rl.testing.learning_task`):

  brpo-honest         BRPO, GenRM prompt in both orders, honest judge (noise and first-position bias)
  writing_rl-honest   Writing-RL (GRPO variant), a reference ladder per prompt built from the base model's own
                      samples (weakest first), honest judge
  brpo-exploitable    BRPO against a judge that also rewards plain length: the reward-hacking watch should fire
  grpo-naive          plain GRPO with verl's `naive` manager and the honest quality as a rule reward (no judge):
                      the step time the judge path is compared with

After training, the final policy and the base model write for held-out prompts, and `writing-rl eval policy`
judges them with the honest judge (both orders, 95% bootstrap interval, length-controlled rate). Prints a table;
writes summary.json, report.md and curves.png into --out-dir.

    .venv/bin/python benchmarks/learning.py [--out-dir DIR] [--runs brpo-honest ...] [--steps N] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EVAL_KEY_ENV = "LEARNING_BENCHMARK_JUDGE_KEY"


@dataclass(frozen=True)
class RunPlan:
    method: str
    judge: str
    script: str
    overrides: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


RULE_REWARD = ("reward.reward_manager.name=naive", "algorithm.adv_estimator=grpo", "trainer.v1.trainer_mode=sync",
               f"reward.custom_reward_function.path={REPO / 'writing_rl/testing/learning_reward.py'}",
               "reward.custom_reward_function.name=compute_score")
RUNS = {
    "grpo-naive": RunPlan("grpo", "rule", "scripts/train_brpo.sh", RULE_REWARD),
    "brpo-honest": RunPlan("brpo", "honest", "scripts/train_brpo.sh"),
    "writing_rl-honest": RunPlan("writing_rl", "honest", "scripts/train_writing_rl.sh",
                                 env={"ALGO": "grpo", "PROMOTION": "majority"}),
    "brpo-exploitable": RunPlan("brpo", "exploitable", "scripts/train_brpo.sh"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, help="default outputs/learning/<time>")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--model", type=Path, help="a local HF folder to train instead of the tiny model "
                        "pretrained here on the task's stories (e.g. models/smollm2; much slower)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per step")
    parser.add_argument("--group-size", type=int, default=4, help="rollouts per prompt")
    parser.add_argument("--max-response-length", type=int, default=96)
    parser.add_argument("--lr", type=float, default=5e-4, help="actor learning rate")
    parser.add_argument("--train-prompts", type=int, default=48)
    parser.add_argument("--eval-prompts", type=int, default=24, help="held-out prompts for the final evaluation")
    parser.add_argument("--eval-samples", type=int, default=2, help="texts per held-out prompt and side")
    parser.add_argument("--noise", type=float, default=1.0, help="sd of the judges' noise (quality is 0-10)")
    parser.add_argument("--position-bias", type=float, default=0.5, help="added to the first response's quality")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild summary.json, report.md and curves.png from the runs already in --out-dir")
    args = parser.parse_args(argv)
    if args.report_only and args.out_dir is None:
        parser.error("--report-only needs the --out-dir of a benchmark run")
    return args


def writing_rl_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `writing-rl` command as a user runs it; its output is shown when it fails."""
    from writing_rl.testing.cli_runner import run_cli

    done = run_cli(*args, env=env)
    if done.returncode != 0:
        raise SystemExit(f"writing-rl {' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


# ---------------------------------------------------------------------------------------------------- the data
def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def build_data(out: Path, base: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Training prompts (verl parquet, with and without a reference ladder) and the held-out prompts."""
    from writing_rl.testing.learning_task import honest_quality, prompts, sample_texts

    every = prompts(args.train_prompts + args.eval_prompts, seed=0)
    train, held_out = every[: args.train_prompts], every[args.train_prompts:]
    rows = [{"id": f"t{i}", "prompt": p} for i, p in enumerate(train)]
    plain = write_rows(out / "data/train_rows.jsonl", rows)
    # the ladder: the weakest, a middle and the best of 8 base samples per prompt (by the hidden quality)
    samples = sample_texts(base, train, 8, max_new_tokens=args.max_response_length, seed=1)
    ladders = []
    for row, texts in zip(rows, samples, strict=True):
        ranked = sorted(dict.fromkeys(texts), key=honest_quality)
        ladders.append({**row, "references": [ranked[0], ranked[len(ranked) // 2], ranked[-1]]})
    laddered = write_rows(out / "data/train_ladder_rows.jsonl", ladders)
    common = ("--test-size", "2", "--no-system-prompt")
    writing_rl_cli("data", "build", str(plain), "--out-dir", str(out / "data/brpo"), "--no-references", *common)
    writing_rl_cli("data", "build", str(laddered), "--out-dir", str(out / "data/writing"), *common)
    held = write_rows(out / "data/held_out.jsonl", [{"id": f"e{i}", "prompt": p} for i, p in enumerate(held_out)])
    return {"brpo": out / "data/brpo", "writing_rl": out / "data/writing", "held_out": held}


# ---------------------------------------------------------------------------------------------------- the runs
def train(name: str, plan: RunPlan, base: Path, data: dict[str, Path], out: Path, args: argparse.Namespace
          ) -> tuple[Any, Any]:
    from writing_rl.cpu.job import CpuJobShape
    from writing_rl.cpu.progress import step_line
    from writing_rl.cpu.rehearsal import RehearsalRequest, environment_with, prepare, run_job
    from writing_rl.testing.server_process import JudgeServerProcess

    folder = data["writing_rl" if plan.method == "writing_rl" else "brpo"]
    env = {"TRAIN_FILE": str(folder / "train.parquet"), "VAL_FILE": str(folder / "test.parquet"),
           "EXPERIMENT_NAME": f"learn-{name}", "ROLLOUT_N": str(args.group_size),
           "GROUP_SIZE": str(args.group_size), **plan.env}
    shape = CpuJobShape(steps=args.steps, batch_size=args.batch_size, group_size=args.group_size,
                        max_response_length=args.max_response_length, learning_rate=args.lr, save_freq=args.steps)
    overrides = [*plan.overrides, "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.0",
                 f"trainer.rollout_data_dir={out / 'rollouts'}"]
    judge_quality = plan.judge if plan.judge != "rule" else "marker"
    with JudgeServerProcess(mode="scores" if plan.method == "brpo" else "verdict", quality=judge_quality,
                            noise=args.noise, first_position_bonus=args.position_bias, seed=7) as judge:
        with environment_with(env):
            job = prepare(RehearsalRequest(script=REPO / plan.script, overrides=overrides, out_dir=out, shape=shape,
                                           model=base, local_judge_url=judge.base_url))
        print(f"[{name}] training {args.steps} steps -> {out}", flush=True)
        result = run_job(job, on_step=lambda step: print(f"[{name}] {step_line(step, args.steps)}", flush=True))
    if result.returncode != 0:
        raise SystemExit(f"[{name}] training failed: {result.error}; log: {job.log_path}")
    return job, result


def evaluate(name: str, ids: list[str], policy_texts: list[list[str]], base_file: Path, held_out: Path, out: Path,
             args: argparse.Namespace) -> None:
    """`writing-rl eval policy`: the final policy against the base model on held-out prompts, honest judge
    (its summary.json, per-prompt rows and report go to the run's eval/ folder)."""
    from writing_rl.testing.server_process import JudgeServerProcess

    policy_file = write_rows(out / "eval/policy.jsonl",
                             [{"id": i, "response": t} for i, t in zip(ids, policy_texts, strict=True)])
    with JudgeServerProcess(mode="verdict", quality="honest", noise=args.noise,
                            first_position_bonus=args.position_bias, seed=11) as judge:
        writing_rl_cli("eval", "policy", "--prompts", str(held_out), "--policy", str(policy_file),
                              "--baseline", str(base_file), "--out-dir", str(out / "eval"), "--json",
                              "--no-criteria", "--base-url", judge.base_url, "--model", "test-judge",
                              "--api-key-env", EVAL_KEY_ENV, env={EVAL_KEY_ENV: "local"})
    print(f"[{name}] evaluated: {out / 'eval/report.html'}", flush=True)


def climbed_prompts(run_folder: Path, name: str) -> int:
    from writing_rl.curriculum.index_file import history_path, index_path, read_history

    history = history_path(index_path(run_folder / "run", f"learn-{name}"))
    return len({record["id"] for record in read_history(history)}) if history.is_file() else 0


def outcome_of(name: str, out: Path, model: str) -> Any:
    """A finished run, read back from its folder: verl's metrics and rollout dumps, the evaluation's summary, the
    index history, and the wall time the benchmark recorded (run.json)."""
    from writing_rl.testing.learning_report import RunOutcome, read_metrics, read_rollouts

    folder, plan = out / name, RUNS[name]
    recorded = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    return RunOutcome(name=name, method=plan.method, judge=plan.judge, model=model,
                      steps=read_metrics(folder / "metrics.jsonl"), rollouts=read_rollouts(folder / "rollouts"),
                      evaluation=json.loads((folder / "eval/summary.json").read_text()),
                      climbed_prompts=climbed_prompts(folder, name) if plan.method == "writing_rl" else None,
                      wall_s=float(recorded.get("wall_s", 0.0)))


def report(out: Path, names: list[str], model: str, notes: list[str], command: str) -> None:
    """summary.json, curves.png and report.md from the runs' folders; the table printed."""
    from writing_rl.testing.learning_report import plain_table, plot_curves, render_markdown, summary_entry, table
    from writing_rl.testing.learning_task import honest_quality

    runs = [outcome_of(name, out, model) for name in names if (out / name / "eval/summary.json").is_file()]
    naive = next((r for r in runs if r.method == "grpo"), None)
    entries = [summary_entry(run, naive) for run in runs]
    (out / "summary.json").write_text(json.dumps(entries, indent=2) + "\n")
    base_texts = [json.loads(line)["response"] for line in (out / "data/base_responses.jsonl").read_text().splitlines()]
    plot = plot_curves(runs, [honest_quality(t) for texts in base_texts for t in texts], out / "curves.png")
    (out / "report.md").write_text(render_markdown(entries, plot, command, notes))
    print(plain_table(table(entries)))
    for note in notes:
        print(note)
    print(f"report: {out / 'report.md'}; summary: {out / 'summary.json'}; curves: {plot}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["VERL_PLATFORM"] = "cpu"  # this process writes models and composes configs before the jobs
    from writing_rl.cpu.rehearsal import actor_weights
    from writing_rl.testing.learning_task import pretrain_base_model, sample_texts

    out = args.out_dir or REPO / "outputs/learning" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/learning.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    notes = [f"{args.steps} steps x {args.batch_size} prompts x {args.group_size} rollouts, lr {args.lr}, judge "
             f"noise sd {args.noise}, first-position bias {args.position_bias}",
             f"held-out evaluation: {args.eval_prompts} prompts x {args.eval_samples} samples, final policy vs base "
             "model, honest judge, both orders"]
    if args.report_only:
        report(out, args.runs, str(args.model or out / "base-model"), notes, command.strip())
        return 0
    started = time.monotonic()
    base = args.model.resolve() if args.model else pretrain_base_model(out / "base-model").resolve()
    data = build_data(out, base, args)
    held_out = [json.loads(line)["prompt"] for line in data["held_out"].read_text().splitlines()]
    sample = dict(max_new_tokens=args.max_response_length, seed=3)
    base_texts = sample_texts(base, held_out, args.eval_samples, **sample)
    ids = [json.loads(line)["id"] for line in data["held_out"].read_text().splitlines()]
    base_file = write_rows(out / "data/base_responses.jsonl",
                           [{"id": i, "response": t} for i, t in zip(ids, base_texts, strict=True)])
    for name in args.runs:
        run_started = time.monotonic()
        job, _ = train(name, RUNS[name], base, data, out / name, args)
        policy_texts = sample_texts(base, held_out, args.eval_samples, weights=actor_weights(job, args.steps),
                                    **sample)
        evaluate(name, ids, policy_texts, base_file, data["held_out"], out / name, args)
        (out / name / "run.json").write_text(json.dumps({"wall_s": time.monotonic() - run_started}) + "\n")
    notes.append(f"model: {base}; total wall time {time.monotonic() - started:.0f} s")
    report(out, args.runs, str(base), notes, command.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
