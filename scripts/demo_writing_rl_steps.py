"""Two simulated Writing-RL steps through verl's real reward loop (local Ray, verl's RewardLoopWorkers, our
`writing_rl` manager and coordinator) with a real judge: rewards, and the index file before and after.

Usage: python scripts/demo_writing_rl_steps.py --base-url URL --model NAME [--output-constraint llama.cpp]
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import ray
from verl.utils import hf_tokenizer

from writing_rl.curriculum.index_creation import create_index
from writing_rl.curriculum.index_file import history_path, read_history
from writing_rl.data.build import build_parquet
from writing_rl.models.tokenizer import gpt2_tokenizer_dir
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data, send

ROOT = Path(__file__).resolve().parent.parent
N = 2  # rollouts per prompt (the GRPO variant; the paper's PPO setting uses 1)
PROMPTS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--output-constraint", default="none")
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--position", default="position-advantage",
                        help="position strategy; the tiny demo judge nearly always prefers the text it reads "
                             "first, so the policy is shown first here to make promotions visible")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="writing-rl-demo-"))
    build_parquet(ROOT / "examples" / "writing_prompts.jsonl", work)
    table = pq.read_table(work / "train.parquet").slice(0, PROMPTS)
    pq.write_table(table, work / "train.parquet")
    rows = table.to_pylist()
    experiment = "demo"
    index, _ = create_index([work / "train.parquet"], experiment, work / "running_file")
    tokenizer_dir = str(gpt2_tokenizer_dir(work / "tokenizer"))
    tokenizer = hf_tokenizer(tokenizer_dir)
    config = reward_loop_config(tokenizer_dir, [
        "reward.reward_manager.name=writing_rl", f"actor_rollout_ref.rollout.n={N}",
        f"data.train_files={work / 'train.parquet'}", f"data.train_batch_size={PROMPTS}",
        f"+reward.reward_kwargs.experiment={experiment}",
        f"+reward.reward_kwargs.run_dir={work / 'running_file'}",
        f"+reward.reward_kwargs.judge.base_url={args.base_url}", f"+reward.reward_kwargs.judge.model={args.model}",
        f"+reward.reward_kwargs.judge.output_constraint={args.output_constraint}",
        f"+reward.reward_kwargs.judge.max_concurrency={args.max_concurrency}",
        f"+reward.reward_kwargs.writing_rl.position={args.position}",
        "+reward.reward_kwargs.judge.max_tokens=160", "+reward.reward_kwargs.judge.temperature=0"])
    print(f"\nWriting-RL: {PROMPTS} prompts x {N} rollouts, judge {args.model}, {args.position}, promotion 'any'")
    print(f"index before:\n{index.read_text()}", flush=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with reward_workers(config) as workers:
            for step in (1, 2):
                refs = {}
                for row in rows:
                    ladder = row["reward_model"]["ground_truth"]["target"]
                    # the "policy" writes like the middle reference, and once more like the weakest
                    responses = [ladder[min(1, len(ladder) - 1)], ladder[0]]
                    uid = f"{row['extra_info']['index']}-{uuid.uuid4()}"
                    refs[row["extra_info"]["index"]] = [send(workers, rollout_data(tokenizer, row, text, uid, s))
                                                        for s, text in enumerate(responses)]
                print(f"step {step}:")
                for pid, pending in refs.items():
                    results = ray.get(pending, timeout=1800)
                    outcomes = ", ".join(f"{r['reward_extra_info']['wrl_verdict']} ({r['reward_score']:g})"
                                         for r in results)
                    print(f"  {pid}: rung {results[0]['reward_extra_info']['wrl_rung']}: {outcomes}")
                print(f"index after step {step}:\n{index.read_text()}", flush=True)
    finally:
        ray.shutdown()
    history = read_history(history_path(index))
    print(f"history ({history_path(index).name}): {len(history)} promotion(s)")
    for record in history:
        print(f"  step {record['step']}: {record['id']} {record['from']} -> {record['to']} "
              f"({record['wins']}/{record['n']} wins){' mastered' if record.get('mastered') else ''}")


if __name__ == "__main__":
    main()
