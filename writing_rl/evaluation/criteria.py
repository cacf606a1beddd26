"""Per-criterion scores (WritingBench style): each criterion of a row scored 1-10 for one response by a
critic prompt file with `output = "score"` (built-in: `criteria_score`)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from writing_rl.judge.client import JudgeClient
from writing_rl.judge.errors import JudgeRequestError, JudgeUnavailable
from writing_rl.judge.parsing import parse_score
from writing_rl.prompts import PromptTemplate

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def split_criteria(criteria: str) -> list[str]:
    """One criterion per non-empty line, list markers (`-`, `*`, `1.`, `1)`) removed."""
    lines = (_BULLET.sub("", line).strip() for line in criteria.splitlines())
    return [line for line in lines if line]


@dataclass(frozen=True)
class CriterionScore:
    criterion: str
    score: float | None
    """None: the critic's answer had no well-formed `\\boxed{score}` in [0, 10], or the call failed."""
    failed: bool = False


class CriteriaScorer:
    def __init__(self, client: JudgeClient, template: PromptTemplate):
        self.client = client
        self.template = template

    async def score_one(self, prompt: str, response: str, criterion: str) -> CriterionScore:
        messages = self.template.render(prompt=prompt, response=response, criteria=criterion)
        try:
            reply = await self.client.complete(messages)
        except (JudgeUnavailable, JudgeRequestError):
            return CriterionScore(criterion, None, failed=True)
        return CriterionScore(criterion, parse_score(reply.text))

    async def score(self, prompt: str, response: str, criteria: str) -> list[CriterionScore]:
        return list(await asyncio.gather(*(self.score_one(prompt, response, c) for c in split_criteria(criteria))))
