"""What a reward manager needs from one rollout, read out of the 1-item DataProto verl sends."""

from __future__ import annotations

from typing import Any

from verl import DataProto

from writing_rl.rollout import VALIDATION_SPLITS, RolloutSample, strip_reasoning


def _last_user_message(raw_prompt: Any) -> str:
    for message in reversed(list(raw_prompt if raw_prompt is not None else [])):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _as_references(target: Any) -> tuple[str, ...]:
    if target is None:
        return ()
    if isinstance(target, str):
        return (target,)
    return tuple(str(t) for t in target)


class MissingSessionError(ValueError):
    """verl sent a rollout without `session_id`: not its V1 trainer, so groups cannot be formed."""


def _optional_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def read_sample(data: DataProto, tokenizer: Any) -> RolloutSample:
    """Fields of the last (only) item; the response is decoded with the actor's tokenizer.

    Validation is recognised here only by the row's `extra_info.split`; the coordinator also knows it from
    the trainer, which tells it when validation starts and ends (verl passes reward managers no flag)."""
    item = data[-1]
    extras = item.non_tensor_batch
    if "session_id" not in extras or "uid" not in extras:
        raise MissingSessionError(
            "verl sent this rollout without uid/session_id: only verl's V1 trainer (trainer.use_v1=true, "
            "trainer.v1.trainer_mode=writing_rl) gives each of a prompt's n rollouts its session; the legacy "
            "trainer, fully-async training and a colocated reward model do not")
    responses = item.batch["responses"]
    valid_length = int(item.batch["attention_mask"][-responses.shape[-1]:].sum())
    response = tokenizer.decode(responses[:valid_length], skip_special_tokens=True)
    reward_model = extras.get("reward_model") or {}
    ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    ground_truth = ground_truth if isinstance(ground_truth, dict) else {"target": ground_truth}
    extra_info = extras.get("extra_info") or {}
    prompt_id = ground_truth.get("id", extra_info.get("index", extras.get("index")))
    return RolloutSample(
        uid=str(extras["uid"]),
        session_id=int(extras["session_id"]),
        prompt_id=str(prompt_id),
        prompt=str(ground_truth.get("prompt") or _last_user_message(extras.get("raw_prompt"))),
        response=strip_reasoning(response),
        references=_as_references(ground_truth.get("target")),
        criteria=ground_truth.get("criteria") or None,
        validation=str(extra_info.get("split", "train")).lower() in VALIDATION_SPLITS,
        global_step=_optional_int(extras.get("global_steps")),
    )
