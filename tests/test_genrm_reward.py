"""The GenRM's verifiable reward: the function itself, then through verl's real reward loop (real Ray,
verl's RewardLoopWorker and naive manager loading it from `pkg://writing_rl.genrm.reward`), and the both-order
consistency read back from a validation dump written by verl's own writer."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import ray
from verl.trainer.ppo.v1.trainer_base import PPOTrainer

from writing_rl.genrm.consistency import consistency_by_step
from writing_rl.genrm.reward import compute_score
from writing_rl.genrm.rl_rows import GENRM_DATA_SOURCE, genrm_rl_rows
from writing_rl.prompts import load_template
from writing_rl.testing.reward_loop import reward_loop_config, reward_workers, rollout_data, send

KEYS = {"score", "acc", "wrong", "tie", "malformed", "verdict", "pair_id", "preferred"}
CASES = [  # (answer, preferred side, reward with the default malformed_reward, verdict)
    ("Principles ... weighted: A 8.2, B 6.5.\n\\boxed{8.2, 6.5}", "A", 1.0, "A"),
    ("A is clumsy; B is vivid. \\boxed{3, 7}", "A", -1.0, "B"),
    ("Both are equally good. \\boxed{7, 7}", "B", 0.0, "tie"),
    ("I prefer A. Final scores: 8 and 6.", "A", -1.5, "none"),
    ("\\boxed{11, 3}", "A", -1.5, "none"),  # out of [0, 10]: not well-formed
    ("\\boxed{8, 3, 1}", "A", -1.5, "none"),
    ("<think>A looks better: \\boxed{9, 2}</think>On reflection B is stronger. \\boxed{4, 8.5}", "B", 1.0, "B"),
    ("<think>only reasoning \\boxed{9, 2}</think> no scores after it", "A", -1.5, "none"),
    ("<think>reasoning cut off by max_tokens \\boxed{9, 2}", "A", -1.5, "none"),
    ("draft \\boxed{2, 9} ... revised after a second look: \\boxed{9, 2}", "A", 1.0, "A"),  # the last box counts
]


@pytest.mark.parametrize(("answer", "side", "reward", "verdict"), CASES)
def test_reward_for_each_kind_of_answer(answer: str, side: str, reward: float, verdict: str) -> None:
    result = compute_score(GENRM_DATA_SOURCE, answer, {"preferred": side}, {"pair_id": "p1"})
    assert set(result) == KEYS  # the same keys for every answer: verl builds its arrays from the first one's
    assert (result["score"], result["verdict"], result["preferred"], result["pair_id"]) == (reward, verdict, side, "p1")
    assert result["acc"] == float(verdict == side) and result["malformed"] == float(verdict == "none")
    assert result["tie"] == float(verdict == "tie")
    assert result["wrong"] == float(verdict in ("A", "B") and verdict != side)


def test_malformed_reward_is_a_setting_and_bad_ground_truth_names_the_row() -> None:
    assert compute_score(GENRM_DATA_SOURCE, "no box", {"preferred": "A"}, malformed_reward=-3.0)["score"] == -3.0
    with pytest.raises(ValueError, match=r"row 'p7:A' has ground_truth 'A'; it must be \{\"preferred\": \"A\"\}"):
        compute_score(GENRM_DATA_SOURCE, "\\boxed{1, 2}", "A", {"index": "p7:A"})


def rl_rows() -> list[dict[str, Any]]:
    pair = {"id": "pair-1", "prompt": "Write a haiku about rain.", "chosen": "Soft rain on the roof",
            "rejected": "rain"}
    return genrm_rl_rows(pair, load_template("genrm"), "test")


@pytest.mark.slow
def test_rewards_through_verls_reward_loop(ray_local: None, tokenizer_dir: str, tokenizer: Any) -> None:
    config = reward_loop_config(tokenizer_dir, [
        "reward.reward_manager.name=naive",
        "reward.custom_reward_function.path=pkg://writing_rl.genrm.reward",
        "reward.custom_reward_function.name=compute_score",
        "+reward.custom_reward_function.reward_kwargs.malformed_reward=-2"])
    rows = {row["reward_model"]["ground_truth"]["preferred"]: row for row in rl_rows()}
    with reward_workers(config) as workers:
        refs = [send(workers, rollout_data(tokenizer, rows[side], answer, f"uid-{uuid.uuid4()}", 0))
                for answer, side, _, _ in CASES]
        results = ray.get(refs, timeout=120)
    for (answer, side, reward, verdict), result in zip(CASES, results, strict=True):
        expected = -2.0 if verdict == "none" else reward  # the script's reward_kwargs reach the function
        assert result["reward_score"] == expected, answer
        info = result["reward_extra_info"]
        assert {k: info[k] for k in ("verdict", "preferred", "pair_id")} == {
            "verdict": verdict, "preferred": side, "pair_id": "pair-1"}, answer
        assert info["acc"] == float(verdict == side)


def test_both_order_consistency_from_verls_validation_dump(tmp_path: Path) -> None:
    lines = [  # (pair, shown side of the preferred text, GenRM verdict)
        ("p1", "A", "A"), ("p1", "B", "B"),      # right in both orders
        ("p2", "A", "A"), ("p2", "B", "A"),      # always the first shown: inconsistent
        ("p3", "A", "B"), ("p3", "B", "A"),      # consistently wrong
        ("p4", "A", "tie"), ("p4", "B", "B"),    # a tie is not consistent
        ("p5", "A", "A"),                        # one order only: not counted
    ]
    results = [compute_score(GENRM_DATA_SOURCE, {"A": "\\boxed{8, 2}", "B": "\\boxed{2, 8}", "tie": "\\boxed{5, 5}"}[v],
                             {"preferred": side}, {"pair_id": pair}) for pair, side, v in lines]
    extra = {key: [r[key] for r in results] for key in results[0] if key != "score"}
    n = len(results)
    PPOTrainer._write_generations(["prompt"] * n, ["answer"] * n, [{"preferred": s} for _, s, _ in lines],
                                  [r["score"] for r in results], extra, str(tmp_path), 10)
    by_step = consistency_by_step(tmp_path)
    assert by_step == {10: {"pairs_with_both_orders": 4, "both_order_consistency": 0.5, "both_order_accuracy": 0.25}}
    printed = subprocess.run([sys.executable, "-m", "writing_rl.genrm.consistency", str(tmp_path)],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(printed) == {"step": 10, **by_step[10]}
