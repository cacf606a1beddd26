"""`make demo`: a real judge on this CPU, a real evaluation table.

Starts SmolLM2-135M-Instruct under llama.cpp on loopback (or uses JUDGE_BASE_URL if set),
runs `writing-rl judge eval` on examples/pairs.jsonl, synthesizes GenRM SFT data from a few of those
pairs (`writing-rl genrm synthesize --limit`), then two simulated Writing-RL steps and one simulated
BRPO step through verl's real reward loop, and stops the server. Last, real training: a 2-step rehearsal of
scripts/train_brpo.sh through verl's own trainer on this CPU (a tiny model, the loopback judge).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from writing_rl.testing.local_llm import LocalLLMServer

ROOT = Path(__file__).resolve().parent.parent
GENRM_DEMO_PAIRS = 3


def synthesize_genrm_data(env: dict[str, str]) -> int:
    """The judge as a GenRM teacher on the first pairs; a 135M teacher is often wrong in one order, so
    many pairs are dropped: the report says how many and why."""
    print(f"\nGenRM cold-start data from the first {GENRM_DEMO_PAIRS} pairs (teacher = the judge above):", flush=True)
    return subprocess.call([sys.executable, "-m", "writing_rl.cli", "genrm", "synthesize",
                            "--pairs", str(ROOT / "examples" / "pairs.jsonl"), "--limit", str(GENRM_DEMO_PAIRS),
                            "--out", str(ROOT / "outputs" / "demo_genrm_sft.parquet")], env=env)


def rehearse_brpo(env: dict[str, str]) -> int:
    """verl's real fit() for 2 steps: FSDP2 actor, weight sync into the CPU rollout, BRPO rewards, checkpoints."""
    data = ROOT / "outputs" / "demo_data" / "brpo"
    if not (data / "train.parquet").exists():
        subprocess.check_call([sys.executable, "-m", "writing_rl.cli", "data", "build",
                               str(ROOT / "examples" / "writing_prompts.jsonl"), "--out-dir", str(data),
                               "--no-references", "--test-size", "2"], env=env)
    print("\nTraining for real on this CPU: 2 steps of scripts/train_brpo.sh through verl's trainer:", flush=True)
    rehearsal_env = {k: v for k, v in env.items() if not k.startswith("JUDGE_")}  # the loopback judge, not SmolLM2
    rehearsal_env.update(TRAIN_FILE=str(data / "train.parquet"), VAL_FILE=str(data / "test.parquet"))
    return subprocess.call([sys.executable, "-m", "writing_rl.cli", "rehearse", str(ROOT / "scripts" / "train_brpo.sh"),
                            "--judge", "local", "--out-dir", str(ROOT / "outputs" / "rehearse" / time.strftime(
                                "demo-%Y%m%d-%H%M%S"))], env=rehearsal_env)


def main() -> int:
    external = os.environ.get("JUDGE_BASE_URL")
    server = nullcontext() if external else LocalLLMServer()
    with server as local:
        env = dict(os.environ)
        env.setdefault("PYTHONWARNINGS", "ignore")  # verl warns about engines a CPU machine does not have
        if local is not None:
            print(f"local judge: {local.model_path.name} on {local.base_url}", flush=True)
            # The 135M model rarely writes [[A]]/[[B]]/[[C]] unprompted; its grammar forces the format.
            env.update(JUDGE_BASE_URL=local.base_url, JUDGE_MODEL=local.model_alias,
                       JUDGE_OUTPUT_CONSTRAINT="llama.cpp", JUDGE_MAX_CONCURRENCY="1",
                       JUDGE_MAX_TOKENS="160", JUDGE_TEMPERATURE="0")
        else:
            print(f"judge: {external}", flush=True)
        command = [sys.executable, "-m", "writing_rl.cli", "judge", "eval",
                   "--pairs", str(ROOT / "examples" / "pairs.jsonl"),
                   "--out", str(ROOT / "outputs" / "demo_judge_eval.jsonl")]
        if subprocess.call(command, env=env) != 0 or synthesize_genrm_data(env) != 0:
            return 1
        judge_args = ["--base-url", env["JUDGE_BASE_URL"], "--model", env.get("JUDGE_MODEL", "judge"),
                      "--output-constraint", env.get("JUDGE_OUTPUT_CONSTRAINT", "none"),
                      "--max-concurrency", env.get("JUDGE_MAX_CONCURRENCY", "8")]
        for demo in ("demo_writing_rl_steps.py", "demo_brpo_step.py"):
            if subprocess.call([sys.executable, str(ROOT / "scripts" / demo), *judge_args], env=env) != 0:
                return 1
    return rehearse_brpo(env)


if __name__ == "__main__":
    sys.exit(main())
