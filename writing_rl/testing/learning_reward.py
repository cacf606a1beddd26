"""The learning task's honest quality as a verl rule reward (`reward.custom_reward_function.path=<this file>`):
plain GRPO with verl's `naive` manager learns the same preference with no judge in the loop. A file of its own
because verl loads it by path, outside the package's module registry."""

from writing_rl.testing.learning_task import honest_quality


def compute_score(data_source: str, solution_str: str, ground_truth: object, extra_info: object = None,
                  **_: object) -> float:
    """verl's rule-reward signature; the honest quality on the judges' 0-10 scale."""
    return honest_quality(solution_str)
