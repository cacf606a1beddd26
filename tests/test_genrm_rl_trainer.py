"""Per-step GenRM metrics (trainer mode `genrm_rl`): the maths on hand-made rollouts scored by the real reward
function, rows shuffled by pair with both orders adjacent, the preflight checks that keep both orders in one step,
and one whole step through verl 0.9.1's real V1 trainer on CPU (verl's dataloader, agent loop, TransferQueue, sync
replay buffer, reward-loop workers with verl's naive manager and our reward), with only vLLM scripted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import get_trainer_cls

from writing_rl.genrm.consistency import consistency
from writing_rl.genrm.reward import compute_score
from writing_rl.genrm.rl_rows import genrm_rl_rows
from writing_rl.genrm.step_metrics import step_metrics
from writing_rl.preflight.genrm import declared_kind
from writing_rl.preflight.training import script_overrides
from writing_rl.prompts import load_template
from writing_rl.testing.cli_runner import REPO, call_cli
from writing_rl.testing.trainer_on_cpu import TQ_OVERRIDES, TrainerOnCpu, answer_with_boxes, tiny_model_dir
from writing_rl.verl_glue.config import compose_trainer_config
from writing_rl.verl_glue.genrm_trainer import GenrmRlTrainer

RL_SCRIPT = "scripts/train_genrm_rl.sh"


def script_config(*extra: str) -> Any:
    """verl's config as the shipped script composes it (its preflight declaration line taken off)."""
    _, overrides = declared_kind(script_overrides(REPO / RL_SCRIPT, list(extra)))
    return compose_trainer_config(overrides)

SCRIPT = {
    # pair id -> the scores each rollout answers (cycling) with the chosen text shown as A, then as B; x: no box
    "p0": ("8:3,3:8", "2:9,5:5"),
    "p1": ("x,9:1", "1:9,2:8"),
}
EXPECTED = {
    # 8 rollouts. right: p0 A 8:3, p0 B 2:9, p1 A 9:1, p1 B 1:9 and 2:8; wrong: p0 A 3:8; tie: 5:5; malformed: x
    "genrm/acc": 5 / 8, "genrm/wrong_rate": 1 / 8, "genrm/tie_rate": 1 / 8, "genrm/malformed_rate": 1 / 8,
    # p0: A picks (chosen, rejected), B picks (chosen, tie): 1 of 4 cross-order comparisons agree (chosen, chosen)
    # p1: A picks (none, chosen), B picks (chosen, chosen): 2 of 4 agree, both on the chosen text
    "genrm/both_order_consistency": (1 / 4 + 2 / 4) / 2, "genrm/both_order_accuracy": (1 / 4 + 2 / 4) / 2,
    "genrm/pairs_with_both_orders": 2.0,
}


def box(score: str) -> str:
    return "no scores" if score == "x" else f"critique \\boxed{{{score.replace(':', ', ')}}}"


def scripted_rollouts() -> list[dict[str, Any]]:
    """What the real reward function returns for each rollout of SCRIPT, two rollouts per order."""
    return [compute_score("genrm_pairwise", box(score), {"preferred": side}, {"pair_id": pair_id})
            for pair_id, orders in SCRIPT.items() for side, scores in zip("AB", orders, strict=True)
            for score in scores.split(",")]


def test_step_metrics_on_hand_made_rollouts() -> None:
    assert step_metrics(scripted_rollouts()) == pytest.approx(EXPECTED)


def test_consistency_counts_only_pairs_with_both_orders_and_never_ties() -> None:
    rollouts = scripted_rollouts()
    one_order = [r for r in rollouts if not (r["pair_id"] == "p1" and r["preferred"] == "B")]
    assert consistency(one_order) == {"pairs_with_both_orders": 1, "both_order_consistency": 0.25,
                                      "both_order_accuracy": 0.25}
    # the same text preferred in both orders, but the wrong one: consistent, not accurate
    wrong_twice = [compute_score("g", box("3:8"), {"preferred": "A"}, {"pair_id": "q"}),
                   compute_score("g", box("8:3"), {"preferred": "B"}, {"pair_id": "q"})]
    assert consistency(wrong_twice) == {"pairs_with_both_orders": 1, "both_order_consistency": 1.0,
                                        "both_order_accuracy": 0.0}
    ties = [compute_score("g", box("5:5"), {"preferred": side}, {"pair_id": "t"}) for side in "AB"]
    assert consistency(ties)["both_order_consistency"] == 0.0
    assert step_metrics([]) == {}


def test_step_metrics_name_what_is_missing_when_another_reward_ran() -> None:
    with pytest.raises(ValueError, match=r"rollout 2 of the batch has no \['pair_id', 'preferred', 'verdict'.*"
                                         r"pkg://writing_rl.genrm.reward"):
        step_metrics([scripted_rollouts()[0], {"score": 1.0, "acc": 1.0}])


def write_pairs(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Write {i}.", "chosen": f"Good {i}.",
                                        "rejected": f"Bad {i}."}) + "\n" for i in range(count)))
    return path


def train_rows(out_dir: Path) -> list[dict[str, Any]]:
    return pq.read_table(out_dir / "train.parquet").to_pylist()


def test_genrm_rl_rows_are_shuffled_by_pair_with_both_orders_adjacent(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.jsonl", 12)
    orders = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        result = call_cli("data", "genrm-rl", str(pairs), "--out-dir", str(tmp_path / name), "--seed", seed)
        assert result.returncode == 0, result.stderr
        rows = train_rows(tmp_path / name)
        assert [(r["extra_info"]["pair_id"], r["extra_info"]["preferred"]) for r in rows[0::2]] == \
            [(r["extra_info"]["pair_id"], "A") for r in rows[1::2]]  # each pair: A then B, next to each other
        assert [r["extra_info"]["preferred"] for r in rows[1::2]] == ["B"] * 12
        orders[name] = [r["extra_info"]["pair_id"] for r in rows[0::2]]
    assert sorted(orders["a"]) == sorted(f"q{i}" for i in range(12))
    assert orders["a"] == orders["b"] != orders["c"]  # the seed fixes the order
    assert orders["a"] != sorted(orders["a"], key=lambda p: int(p[1:]))  # shuffled


# ---------------------------------------------------------------- preflight


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_model_dir(tmp_path_factory.mktemp("tiny_model")))


def test_preflight_fails_when_a_step_could_split_a_pair(model_dir: str, tmp_path: Path) -> None:
    assert call_cli("data", "genrm-rl", str(write_pairs(tmp_path / "pairs.jsonl", 6)), "--out-dir",
                   str(tmp_path / "rl")).returncode == 0
    rows = train_rows(tmp_path / "rl")
    pq.write_table(pa.Table.from_pylist([rows[1], rows[2], rows[0], *rows[3:]]), tmp_path / "mixed.parquet")
    write_pairs(tmp_path / "val.jsonl", 1)
    env = {"MODEL_PATH": model_dir, "TRAIN_FILE": str(tmp_path / "mixed.parquet"), "TRAIN_BATCH_SIZE": "3",
           "VAL_FILE": str(tmp_path / "rl" / "train.parquet")}
    result = call_cli("preflight", RL_SCRIPT, "data.shuffle=True", "trainer.v1.trainer_mode=sync", env=env)
    out = result.stdout
    assert ("[FAIL] trainer mode: trainer.v1.trainer_mode=sync: accuracy and both-order consistency are logged per "
            "step only in trainer mode genrm_rl; set trainer.v1.trainer_mode=genrm_rl") in out, out
    assert "[FAIL] both orders in one step: data.shuffle=True: verl's RandomSampler would split" in out
    assert "set data.shuffle=False" in out
    assert ("[FAIL] both orders in one step: data.train_batch_size=3 is odd: a step would end between the two "
            "orders of a pair; set TRAIN_BATCH_SIZE to an even number") in out
    assert (f"[FAIL] both orders in one step: {tmp_path / 'mixed.parquet'}: rows 1 and 2 are not the two orders of "
            "one pair") in out and "rebuild it with `writing-rl data genrm-rl`" in out
    assert result.returncode == 1


def test_the_shipped_script_builds_verls_sync_trainer_in_mode_genrm_rl(model_dir: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_PATH", model_dir)
    config = script_config()
    assert config.data.shuffle is False and config.data.train_batch_size % 2 == 0
    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    assert type(trainer) is GenrmRlTrainer
    assert type(trainer.replay_buffer) is ReplayBuffer  # verl's sync buffer, not ReplayBufferAsync
    assert trainer.trainer_mode == trainer.replay_buffer.trainer_mode == "sync"
    assert trainer.replay_buffer.gen_batch_size == config.data.train_batch_size
    other = script_config("reward.custom_reward_function.name=other")
    with pytest.raises(ValueError, match=r"reward.custom_reward_function is path=pkg://writing_rl.genrm.reward, "
                                         r"name=other. Set reward.custom_reward_function.path="):
        GenrmRlTrainer(other)


# ---------------------------------------------------------------- one step through verl's trainer




def scripted_rows() -> list[dict[str, Any]]:
    """The rows of `writing-rl data genrm-rl` for SCRIPT's pairs: each text carries the scores the scripted GenRM
    answers when that text is shown as A."""
    template = load_template("genrm")
    pairs = [{"id": pair_id, "prompt": f"Write story {pair_id}.", "chosen": f"A good story. BOXES={if_a}",
              "rejected": f"A weak story. BOXES={if_b}"} for pair_id, (if_a, if_b) in SCRIPT.items()]
    return [row for pair in pairs for row in genrm_rl_rows(pair, template, "train")]


@pytest.mark.slow
def test_one_step_of_genrm_rl_logs_accuracy_and_consistency_through_verls_trainer(
        transfer_queue: None, model_dir: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows = scripted_rows()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:2]), tmp_path / "val.parquet")
    monkeypatch.setenv("MODEL_PATH", model_dir)
    config = script_config(
        "trainer.n_gpus_per_node=1", "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        f"data.train_files={tmp_path / 'train.parquet'}", f"data.val_files={tmp_path / 'val.parquet'}",
        "data.train_batch_size=4", "data.max_prompt_length=1024", "data.max_response_length=32",
        "data.dataloader_num_workers=0", "actor_rollout_ref.rollout.n=2", "reward.num_workers=2",
        "actor_rollout_ref.rollout.agent.num_workers=2", "trainer.save_freq=-1",
        f"trainer.default_local_dir={tmp_path / 'checkpoints'}", *TQ_OVERRIDES)
    harness = TrainerOnCpu(config, model_dir, answer=answer_with_boxes)
    try:
        assert type(harness.trainer) is GenrmRlTrainer
        trajectories, metrics = harness.training_step()
    finally:
        harness.shutdown()
    assert len(trajectories) == 8
    for t in trajectories.values():  # verl's naive manager ran our reward on each rollout
        assert t["reward"] == t["extra"]["score"] and t["extra"]["pair_id"] in SCRIPT
    assert {k: v for k, v in metrics.items() if k.startswith("genrm/")} == pytest.approx(EXPECTED)
