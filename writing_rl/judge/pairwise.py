"""A pairwise judge: which of two texts answers a prompt better. Three lines from a notebook:

    judge = PairwiseJudge.from_settings(JudgeSettings(base_url=..., model=...))
    result = await judge.compare(prompt, text_a, text_b)
    result.verdict  # Verdict.A / Verdict.B / Verdict.TIE, or None if the output was unparseable
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from writing_rl.judge.client import JudgeClient, JudgeReply
from writing_rl.judge.errors import JudgeRequestError, JudgeUnavailable
from writing_rl.judge.parsing import Verdict, parse_scores, parse_verdict, verdict_from_scores
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import PromptTemplate, TemplateError, load_template

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """One judge call's outcome. `failed` means no answer at all (never scored as a verdict)."""

    verdict: Verdict | None
    scores: tuple[float, float] | None
    raw: str
    reply: JudgeReply | None
    error: str | None = None
    status: int | None = None
    """The HTTP status of a request the judge refused (a 4xx other than 429); None otherwise."""

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def unparseable(self) -> bool:
        return not self.failed and self.verdict is None

    @property
    def latency_s(self) -> float:
        return self.reply.latency_s if self.reply else 0.0

    @property
    def tokens(self) -> int:
        return self.reply.prompt_tokens + self.reply.completion_tokens if self.reply else 0


class PairwiseJudge:
    """Renders a prompt file, calls the judge, parses the answer in the file's declared format."""

    def __init__(self, client: JudgeClient, template: PromptTemplate,
                 criteria_template: PromptTemplate | None = None):
        if criteria_template is not None and not criteria_template.uses_criteria:
            raise TemplateError(f"{criteria_template.path}: used as the criteria template but has no "
                                "{criteria} placeholder")
        self.client = client
        self.template = template
        self.criteria_template = criteria_template
        self._reported_statuses: set[int] = set()

    @classmethod
    def from_settings(cls, settings: JudgeSettings, template: str = "pairwise",
                      criteria_template: str | None = None) -> PairwiseJudge:
        return cls(JudgeClient(settings), load_template(template),
                   load_template(criteria_template) if criteria_template else None)

    def _template_for(self, criteria: str | None) -> PromptTemplate:
        if criteria and self.criteria_template is not None:
            return self.criteria_template
        return self.template

    def _constraint_body(self, template: PromptTemplate) -> dict[str, Any]:
        constraint = self.client.settings.output_constraint
        if constraint == "none" or not template.grammar:
            return {}
        if constraint == "llama.cpp":
            return {"grammar": template.grammar}
        return {"structured_outputs": {"grammar": template.grammar}}

    async def compare(self, prompt: str, response_a: str, response_b: str, *,
                      criteria: str | None = None, vote: int = 0) -> Comparison:
        template = self._template_for(criteria)
        values = {"prompt": prompt, "response_a": response_a, "response_b": response_b}
        if template.uses_criteria:
            values["criteria"] = criteria or ""
        messages = template.render(**values)
        try:
            reply = await self.client.complete(messages, vote=vote, extra_body=self._constraint_body(template))
        except JudgeUnavailable as exc:
            return Comparison(None, None, "", None, error=str(exc))
        except JudgeRequestError as exc:
            if exc.status not in self._reported_statuses:
                self._reported_statuses.add(exc.status)
                logger.error("judge rejected a request (%s); check the judge settings", exc)
            return Comparison(None, None, "", None, error=str(exc), status=exc.status)
        if template.output == "scores":
            scores = parse_scores(reply.text)
            return Comparison(verdict_from_scores(scores), scores, reply.text, reply)
        return Comparison(parse_verdict(reply.text), None, reply.text, reply)

    async def aclose(self) -> None:
        await self.client.aclose()
