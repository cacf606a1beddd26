"""The Writing-RL scorer without Ray: group timeouts and stragglers never promote twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from writing_rl.curriculum.index_file import history_path, read_history, read_index, write_index
from writing_rl.curriculum.schedule import Curriculum, PromotionRule
from writing_rl.curriculum.scorer import RewardValues, WritingRLScorer, combine
from writing_rl.judge.client import JudgeClient
from writing_rl.judge.pairwise import PairwiseJudge
from writing_rl.judge.settings import JudgeSettings
from writing_rl.prompts import load_template
from writing_rl.rollout import RolloutSample
from writing_rl.testing.server_process import JudgeServerProcess


def sample(uid: str, session: int, quality: float) -> RolloutSample:
    return RolloutSample(uid=uid, session_id=session, prompt_id="p0", prompt="Write", response=f"QUALITY={quality}",
                         references=("QUALITY=3", "QUALITY=5"), criteria=None, validation=False)


async def test_timeout_then_straggler_promotes_once(judge_server: JudgeServerProcess, tmp_path: Path) -> None:
    index = tmp_path / "index_x.json"
    write_index(index, {"p0": 0})
    async with JudgeClient(JudgeSettings(base_url=judge_server.base_url)) as client:
        scorer = WritingRLScorer(PairwiseJudge(client, load_template("pairwise")),
                                 Curriculum(index, {"p0": 2}, PromotionRule.parse("any")),
                                 position="both", rewards=RewardValues(), seed=0, group_timeout_s=0.5,
                                 groups_per_step=1)
        first = await asyncio.gather(scorer.submit(sample("u1", 0, 9), 3), scorer.submit(sample("u1", 1, 1), 3))
        # the third rollout never came: the group closed with two; the promotion reaches the file when the index
        # writer runs (polled: on a loaded machine the judgements alone can outlast a fixed sleep)
        for _ in range(300):
            if read_index(index) == {"p0": 1}:
                break
            await asyncio.sleep(0.1)
        assert read_index(index) == {"p0": 1}
        straggler = await scorer.submit(sample("u1", 2, 9), 3)
        assert straggler["extra"]["wrl_rung"] == 0 and straggler["reward"] == 1.0
    assert [r["reward"] for r in first] == [1.0, 0.0]
    assert {r["extra"]["wrl_position"] for r in first} == {"both"}
    assert read_index(index) == {"p0": 1}  # not promoted a second time
    assert len(read_history(history_path(index))) == 1
    assert scorer.stats.timed_out_groups == 1


def test_both_orders_rule() -> None:
    assert combine(["win", "win"]) == "win" and combine(["loss", "loss"]) == "loss"
    assert combine(["win", "loss"]) == "tie" and combine(["win", "tie"]) == "tie"
    assert combine(["win", "failure"]) == "failure"
