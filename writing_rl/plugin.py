"""verl plugin entry point (group `verl.plugins`): registrations only, and cheap.

verl imports this module at the end of `import verl` in every process (reward workers and agent-loop workers
included), and swallows any error at DEBUG level, so `writing-rl doctor` calls `registration_report()` in a fresh
process and in a Ray worker to prove that the names below really are registered.

Our reward managers, estimator and trainer modes subclass and register with verl's trainer stack, which `import
verl` alone does not load (importing it here cost every verl process about 1.5x the CPU time, 150 MB and a dozen
warning lines). So each is registered by a post-import hook on the verl module that holds its registry: verl's
own import of that module, the first time verl needs it, registers ours before anything can look them up.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from types import ModuleType

EXPECTED_REWARD_MANAGERS: tuple[str, ...] = ("brpo", "writing_rl")
EXPECTED_ADV_ESTIMATORS: tuple[str, ...] = ("brpo",)
EXPECTED_TRAINER_MODES: tuple[str, ...] = ("genrm_rl", "writing_rl")


REGISTRATIONS: dict[str, tuple[str, ...]] = {
    # verl module holding a registry (the package, so that it is whole when ours import from it): our modules
    # that register with it by decorator
    "verl.trainer.ppo.core_algos": ("writing_rl.brpo.estimator",),
    "verl.experimental.reward_loop.reward_manager": ("writing_rl.verl_glue.brpo_manager",
                                                     "writing_rl.verl_glue.writing_rl_manager"),
    "verl.trainer.ppo.v1": ("writing_rl.verl_glue.trainer", "writing_rl.verl_glue.genrm_trainer"),
}


def _importer(modules: tuple[str, ...]) -> Callable[[ModuleType], None]:
    def import_ours(_: ModuleType) -> None:
        for name in modules:
            import_module(name)

    return import_ours


def register() -> None:
    """Hook our registrations onto verl's registries (idempotent; a registry already imported is registered with
    at once). The CPU backend comes first and only when asked for (`VERL_PLATFORM=cpu`): a GPU job never loads it."""
    from wrapt import register_post_import_hook

    import writing_rl.cpu

    if writing_rl.cpu.is_requested():
        writing_rl.cpu.activate()
    for verl_module, ours in REGISTRATIONS.items():
        register_post_import_hook(_importer(ours), verl_module)


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
