"""verl plugin entry point (group `verl.plugins`): registrations only.

verl imports this module at the end of `import verl` in every process, and swallows any error
at DEBUG level, so `writing-rl doctor` calls `registration_report()` in a fresh process and in
a Ray worker to prove that the names below really are registered.
"""

from __future__ import annotations

EXPECTED_REWARD_MANAGERS: tuple[str, ...] = ("brpo", "writing_rl")
EXPECTED_ADV_ESTIMATORS: tuple[str, ...] = ("brpo",)
EXPECTED_TRAINER_MODES: tuple[str, ...] = ("genrm_rl", "writing_rl")


def register() -> None:
    """Import the modules whose decorators register our names with verl (idempotent). The CPU backend comes
    first and only when asked for (`VERL_PLATFORM=cpu`): a GPU job never loads it."""
    import writing_rl.cpu

    if writing_rl.cpu.is_requested():
        writing_rl.cpu.activate()
    # each import below registers by decorator: the reward managers, the estimator, the trainer modes
    import writing_rl.brpo.estimator
    import writing_rl.verl_glue.brpo_manager
    import writing_rl.verl_glue.genrm_trainer
    import writing_rl.verl_glue.trainer
    import writing_rl.verl_glue.writing_rl_manager


def registration_report() -> dict[str, list[str]]:
    """Which of our names verl's registries hold in *this* process, and which are missing."""
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    missing = [f"reward manager {n!r}" for n in EXPECTED_REWARD_MANAGERS if n not in REWARD_MANAGER]
    missing += [f"advantage estimator {n!r}" for n in EXPECTED_ADV_ESTIMATORS if n not in ADV_ESTIMATOR_REGISTRY]
    missing += [f"trainer mode {n!r}" for n in EXPECTED_TRAINER_MODES if n not in TRAINER_REGISTRY]
    present = [f"reward manager {n!r}" for n in EXPECTED_REWARD_MANAGERS if n in REWARD_MANAGER]
    present += [f"advantage estimator {n!r}" for n in EXPECTED_ADV_ESTIMATORS if n in ADV_ESTIMATOR_REGISTRY]
    present += [f"trainer mode {n!r}" for n in EXPECTED_TRAINER_MODES if n in TRAINER_REGISTRY]
    return {"registered": present, "missing": missing}


register()
