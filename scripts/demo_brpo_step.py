"""One simulated BRPO step through verl's real reward loop (local Ray, verl's RewardLoopWorkers, our
`brpo` manager and coordinator) with a real judge, then verl's compute_advantage(adv_estimator="brpo").

Usage: python scripts/demo_brpo_step.py --base-url URL --model NAME [--output-constraint llama.cpp]
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

import numpy as np
import ray
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.utils import hf_tokenizer

from writing_rl.models.tokenizer import gpt2_tokenizer_dir
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data, send

PROMPT = "Write a two-sentence story about a cat who finds a key."
GROUP = [
    "The cat found a key. It was a key.",
    "Under the porch the tabby found a brass key, and that night every locked door in the house stood open.",
    "Mittens batted a tiny silver key out from under the fridge, and when she dropped it at the old man's "
    "feet, he wept: it opened the box of letters from his wife.",
    "cat key cat key cat key",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--output-constraint", default="none")
    parser.add_argument("--max-concurrency", type=int, default=1)
    args = parser.parse_args()

    tokenizer_dir = str(gpt2_tokenizer_dir(Path(tempfile.mkdtemp()) / "tokenizer"))
    tokenizer = hf_tokenizer(tokenizer_dir)
    experiment = f"demo-{uuid.uuid4().hex[:6]}"
    config = reward_loop_config(tokenizer_dir, [
        "reward.reward_manager.name=brpo", f"actor_rollout_ref.rollout.n={len(GROUP)}",
        f"+reward.reward_kwargs.experiment={experiment}",
        f"+reward.reward_kwargs.judge.base_url={args.base_url}", f"+reward.reward_kwargs.judge.model={args.model}",
        f"+reward.reward_kwargs.judge.output_constraint={args.output_constraint}",
        f"+reward.reward_kwargs.judge.max_concurrency={args.max_concurrency}",
        "+reward.reward_kwargs.judge.max_tokens=160", "+reward.reward_kwargs.judge.temperature=0"])
    row = {"data_source": "writing", "prompt": [{"role": "user", "content": PROMPT}],
           "reward_model": {"style": "judge", "ground_truth": {"prompt": PROMPT, "target": None, "id": "demo"}},
           "extra_info": {"index": "demo", "split": "train"}}
    uid = f"demo-{uuid.uuid4()}"
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with reward_workers(config) as workers:
            print(f"\nBRPO step: one prompt, a group of {len(GROUP)} rollouts, judged by {args.model}", flush=True)
            results = ray.get([send(workers, rollout_data(tokenizer, row, text, uid, s))
                               for s, text in enumerate(GROUP)], timeout=1800)
    finally:
        ray.shutdown()

    rewards = torch.tensor([r["reward_score"] for r in results])
    mask = torch.ones(len(GROUP), 4)
    token_rewards = torch.zeros(len(GROUP), 4)
    token_rewards[:, -1] = rewards
    data = DataProto.from_dict(tensors={"token_level_rewards": token_rewards, "response_mask": mask,
                                        "responses": torch.ones(len(GROUP), 4, dtype=torch.long)},
                               non_tensors={"uid": np.array([uid] * len(GROUP), dtype=object)})
    config = OmegaConf.create({"adv_estimator": "brpo", "brpo": {"skew_threshold": 0.6}})
    advantages = compute_advantage(data, adv_estimator="brpo", config=config).batch["advantages"][:, 0]
    print(f"prompt: {PROMPT}\n")
    header = f"{'#':>2} {'role':<9} {'verdicts (cand. first | second)':<32} {'scores':<16} {'reward':>6} {'adv.':>5}"
    print(header + "  text")
    for s, (text, result) in enumerate(zip(GROUP, results, strict=True)):
        info = result["reward_extra_info"]
        role = "reference" if info["brpo_is_reference"] else "candidate"
        verdicts = f"{info['brpo_verdicts_candidate_first'] or '-'} | {info['brpo_verdicts_candidate_second'] or '-'}"
        print(f"{s:>2} {role:<9} {verdicts:<32} {info['brpo_scores'] or '-':<16} {result['reward_score']:>6.1f} "
              f"{advantages[s].item() or 0.0:>5.1f}  {text[:60]}")
    skewed = results[0]["reward_extra_info"]["brpo_group_skewed"]
    print(f"\n|sum r| / G = {abs(rewards.sum().item()) / len(GROUP):.2f}: group "
          f"{'dropped by the skew filter (advantages 0)' if skewed else 'kept'}")


if __name__ == "__main__":
    main()
