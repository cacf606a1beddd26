r"""The GenRM's verifiable reward, as a verl custom reward function.

    reward.custom_reward_function.path=pkg://writing_rl.genrm.reward
    reward.custom_reward_function.name=compute_score

The GenRM's answer (text after any `<think>...</think>`; the same strict parser the judge client uses) must end
with a well-formed `\boxed{score_a, score_b}`, both scores in [0, 10]. Against the row's ground truth
`{"preferred": "A" | "B"}` (the side the human-preferred text is shown on):
+1 for the higher score on that side, -1 for the higher score on the other, 0 for equal scores, and
`malformed_reward` (default -1.5: below a wrong answer, so that breaking the format never pays) when no
well-formed box is there. `malformed_reward` can be changed with
`+reward.custom_reward_function.reward_kwargs.malformed_reward=X`.

The returned dict has the same keys for every output (verl's agent loop builds its arrays from the first sample's
keys): `score`, `acc`, `wrong`, `tie`, `malformed` (0/1 each), `verdict` ("A", "B", "tie" or "none"), `pair_id`
and `preferred`. verl logs the numeric ones per validation as `val-core/genrm_pairwise/acc/mean@N` and
`val-aux/genrm_pairwise/<key>/...`, and writes all of them into validation dumps (`trainer.validation_data_dir`),
from which `writing_rl.genrm.consistency` computes both-order consistency.
"""

from __future__ import annotations

from typing import Any

from writing_rl.judge.parsing import Verdict, parse_scores, verdict_from_scores

CORRECT = 1.0
WRONG = -1.0
TIE = 0.0
MALFORMED = -1.5


def preferred_side(ground_truth: Any, extra_info: dict[str, Any] | None) -> str:
    """"A" or "B" from `{"preferred": ...}`; anything else is a data error that names the row."""
    side = ground_truth.get("preferred") if isinstance(ground_truth, dict) else None
    if side not in ("A", "B"):
        index = (extra_info or {}).get("index")
        raise ValueError(f"GenRM reward: row {index!r} has ground_truth {ground_truth!r}; it must be "
                         '{"preferred": "A"} or {"preferred": "B"} (build the rows with `writing-rl data genrm-rl`)')
    return side


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None,
                  malformed_reward: float = MALFORMED, **kwargs: Any) -> dict[str, Any]:
    """verl's custom reward signature; `kwargs` takes what verl's reward managers add (router address, ...)."""
    side = preferred_side(ground_truth, extra_info)
    verdict = verdict_from_scores(parse_scores(solution_str))
    if verdict is None:
        score, shown = float(malformed_reward), "none"
    elif verdict is Verdict.TIE:
        score, shown = TIE, "tie"
    else:
        score, shown = (CORRECT if verdict.value == side else WRONG), verdict.value
    return {"score": score, "acc": float(shown == side), "wrong": float(shown in ("A", "B") and shown != side),
            "tie": float(shown == "tie"), "malformed": float(shown == "none"), "verdict": shown,
            "pair_id": str((extra_info or {}).get("pair_id", "")), "preferred": side}
