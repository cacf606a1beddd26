"""What our reward managers need from verl's trainer, checked on the composed config before anything runs.

verl 0.9.1 gives the n rollouts of one prompt a `session_id` only in its V1 trainer, calls reward managers
with `uid` only on the streaming path, and runs our hooks (metrics, index snapshots, validation flag) only in
trainer mode `writing_rl`. Anything else would hang (BRPO groups) or silently skip the curriculum's bookkeeping,
so the reward managers, the trainer and `writing-rl preflight` all refuse it with the same words.
"""

from __future__ import annotations

from typing import Any

from writing_rl.verl_glue.fit_problem import FitProblem
from writing_rl.verl_glue.genrm_hosting import hosting_problems

TRAINER_MODE = "writing_rl"
RAY_ASYNC_ACTOR_MAX_CONCURRENCY = 1000
"""Ray's default `max_concurrency` for an async actor; verl creates its reward workers without setting it."""


class TrainerFitError(ValueError):
    """The composed verl config cannot work with our reward managers; the message says what to change."""


def trainer_fit_problems(config: Any) -> list[FitProblem]:
    """Every reason this config would hang, fail or silently misbehave with our reward managers."""
    problems: list[FitProblem] = []
    trainer = config.trainer
    if not trainer.get("use_v1", True):
        problems.append(FitProblem(
            "trainer.use_v1=false: verl's legacy trainer gives the n rollouts of a prompt no session_id, so a "
            "group cannot be told apart from its members (BRPO would wait for a group that never completes). "
            f"Set trainer.use_v1=true (verl's default) and trainer.v1.trainer_mode={TRAINER_MODE}.", True))
    else:
        mode = trainer.get("v1", {}).get("trainer_mode", "sync")
        if mode != TRAINER_MODE:
            problems.append(FitProblem(
                f"trainer.v1.trainer_mode={mode}: writing-rl's per-step reward metrics, the curriculum index "
                "in every checkpoint (and its restore on resume) and the validation flag only run in trainer "
                f"mode {TRAINER_MODE} (verl's synchronous trainer with these hooks). "
                f"Set trainer.v1.trainer_mode={TRAINER_MODE}.", True))
    reward_model = config.reward.get("reward_model", {}) or {}
    if reward_model.get("enable", False) and not reward_model.get("enable_resource_pool", False):
        problems.append(FitProblem(
            "reward.reward_model.enable=true with reward.reward_model.enable_resource_pool=false (a colocated "
            "reward model): verl then judges only after the whole batch is generated, with no overlap with "
            "generation, and passes the reward manager neither uid nor session_id, so BRPO groups and the "
            "curriculum cannot be told apart. Set reward.reward_model.enable_resource_pool=true (the GenRM on GPUs "
            "of its own), or reward.reward_model.enable=false when the judge is an external server.", True))
    problems += hosting_problems(config)
    problems += _concurrency_problems(config)
    return problems


def _concurrency_problems(config: Any) -> list[FitProblem]:
    """BRPO: every rollout of a step holds a reward-worker slot while it waits for its group's judgement; verl
    picks the worker at random, so beyond Ray's per-actor concurrency later siblings queue behind waiting ones
    and their groups time out. (A Writing-RL rollout waits only for its own judgement.)"""
    if config.reward.reward_manager.get("name") != "brpo":
        return []
    workers = int(config.reward.get("num_workers", 1) or 1)
    in_flight = int(config.data.get("train_batch_size") or 1) * int(config.actor_rollout_ref.rollout.n)
    capacity = workers * RAY_ASYNC_ACTOR_MAX_CONCURRENCY
    enough = -(-2 * in_flight // RAY_ASYNC_ACTOR_MAX_CONCURRENCY)
    advice = (f"data.train_batch_size x actor_rollout_ref.rollout.n = {in_flight} rollouts wait at the same time "
              f"over reward.num_workers={workers} workers of at most {RAY_ASYNC_ACTOR_MAX_CONCURRENCY} concurrent "
              f"calls each; raise reward.num_workers to at least {enough}")
    if in_flight > capacity:
        return [FitProblem(f"{advice} (groups would time out instead of being judged)", True)]
    if in_flight * 2 > capacity:
        return [FitProblem(f"{advice} (workers are picked at random, so some may fill up)", False)]
    return []


def raise_for_fatal(problems: list[FitProblem]) -> None:
    fatal = [p.message for p in problems if p.fatal]
    if fatal:
        raise TrainerFitError("writing-rl cannot run with this verl config:\n  - " + "\n  - ".join(fatal))
