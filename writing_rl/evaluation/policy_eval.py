"""Judge a policy's responses against a baseline's: every pair in both orders, then the critic on every
criterion of rows that carry criteria. Results accumulate on the object as they finish, so a caller whose
run is interrupted (Ctrl-C) still reports everything judged so far."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tqdm import tqdm

from writing_rl.evaluation.criteria import CriteriaScorer, CriterionScore
from writing_rl.evaluation.inputs import EvalPrompt
from writing_rl.evaluation.outcomes import JudgedPair
from writing_rl.judge.evaluation import PairResult, PreferencePair, evaluate_pairs
from writing_rl.judge.pairwise import PairwiseJudge

SIDES = ("policy", "baseline")


class PolicyEvaluation:
    def __init__(self, judge: PairwiseJudge, critic: CriteriaScorer | None, prompts: Sequence[EvalPrompt],
                 policy: dict[str, list[str]], baseline: dict[str, list[str]]):
        self.judge, self.critic = judge, critic
        self.prompts = list(prompts)
        self.policy, self.baseline = policy, baseline
        self._where: dict[str, tuple[str, int]] = {}
        self._order = {prompt.id: n for n, prompt in enumerate(self.prompts)}
        self.samples = {p.id: min(len(policy[p.id]), len(baseline[p.id])) for p in self.prompts}
        """Sample k of the policy meets sample k of the baseline; extra samples of either side are unused."""
        self.pairs: list[PreferencePair] = []
        self.unjudgeable: list[PreferencePair] = []
        """Pairs with an empty response on a side: decided without the judge (the empty side loses)."""
        for prompt in self.prompts:
            for k in range(self.samples[prompt.id]):
                pair_id = f"{prompt.id}#{k}"
                self._where[pair_id] = (prompt.id, k)
                pair = PreferencePair(pair_id, prompt.prompt, policy[prompt.id][k], baseline[prompt.id][k])
                empty = not pair.chosen.strip() or not pair.rejected.strip()
                (self.unjudgeable if empty else self.pairs).append(pair)
        self.finished_pairs: list[PairResult] = []
        self.criteria_scores: dict[str, dict[str, list[CriterionScore]]] = {}

    def judged_pairs(self) -> list[JudgedPair]:
        """The pairs decided so far (judged, or with an empty side), in input order."""
        decided = [JudgedPair(*self._where[r.pair.id], r.pair, r) for r in self.finished_pairs]
        decided += [JudgedPair(*self._where[pair.id], pair, None) for pair in self.unjudgeable]
        return sorted(decided, key=lambda p: (self._order[p.prompt_id], p.sample))

    async def run(self, *, progress: bool = True) -> None:
        await evaluate_pairs(self.judge, self.pairs, progress=progress, finished=self.finished_pairs)
        if self.critic is not None:
            await self._score_criteria(self.critic, progress)

    async def _score_criteria(self, critic: CriteriaScorer, progress: bool) -> None:
        jobs = [(prompt, side, text) for prompt in self.prompts if prompt.criteria
                for side, texts in zip(SIDES, (self.policy, self.baseline), strict=True)
                for text in texts[prompt.id][: self.samples[prompt.id]] if text.strip()]

        async def one(prompt: EvalPrompt, side: str, text: str) -> tuple[str, str, list[CriterionScore]]:
            assert prompt.criteria is not None
            return prompt.id, side, await critic.score(prompt.prompt, text, prompt.criteria)

        tasks = [asyncio.ensure_future(one(*job)) for job in jobs]
        try:
            with tqdm(total=len(tasks), desc="scoring criteria", unit="text", disable=not progress) as bar:
                for done in asyncio.as_completed(tasks):
                    prompt_id, side, scores = await done
                    self.criteria_scores.setdefault(prompt_id, {}).setdefault(side, []).extend(scores)
                    bar.update(1)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
