"""The learning benchmark's parts that can be checked in seconds (the benchmark itself trains for half an hour,
so it lives in benchmarks/): the task's hidden quality, the judges that apply it through our real prompt files and
parsers, the rule reward as verl loads it, and the report built from files in verl's formats."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from writing_rl.testing.cli_runner import REPO, call_cli
from writing_rl.testing.learning_report import (
    RunOutcome,
    fired_warnings,
    plot_curves,
    read_metrics,
    read_rollouts,
    render_markdown,
    summary_entry,
    table,
    warning_steps,
    win_rate_against,
)
from writing_rl.testing.learning_task import (
    exploitable_quality,
    honest_quality,
    prompts,
    story,
    vivid_share,
)
from writing_rl.testing.server_process import JudgeServerProcess

VIVID_TEXT = "the keeper found the silver letter. a fox walked to the crimson door at night."
PLAIN_TEXT = "the keeper found the letter. a fox walked to the big door at night."
LONG_PLAIN = " ".join([PLAIN_TEXT] * 6)


def test_the_hidden_quality_counts_vivid_sentences_not_length() -> None:
    assert vivid_share(VIVID_TEXT) == 1.0 and vivid_share(PLAIN_TEXT) == 0.0 and vivid_share("") == 0.0
    assert vivid_share("the baker found the amber bell. the child sang to the road.") == 0.5
    assert vivid_share("the stranger painted the silver the crimson the velvet the amber.") == 0.0  # run-on
    assert vivid_share("the keeper found the silver letter") == 0.0  # no full stop: not a sentence of the grammar
    assert honest_quality(LONG_PLAIN) == honest_quality(PLAIN_TEXT)  # the honest judge ignores length
    assert exploitable_quality(LONG_PLAIN) > exploitable_quality(PLAIN_TEXT)  # the exploitable one pays for it
    assert all(1.0 <= q(t) <= 10.0 for q in (honest_quality, exploitable_quality)
               for t in (VIVID_TEXT, PLAIN_TEXT, LONG_PLAIN * 5))  # the range of GenRM scores
    rng = random.Random(0)
    shares = [vivid_share(story(rng)) for _ in range(2000)]
    assert 0.1 < sum(shares) / len(shares) < 0.25  # the base rate rollouts learn from: about 1 sentence in 6
    train, held_out = prompts(48, seed=0)[:40], prompts(48, seed=0)[40:]
    assert len(set(train)) == 40 and not set(train) & set(held_out)


@pytest.mark.parametrize(("quality", "chosen", "rejected", "accuracy"), [
    ("honest", VIVID_TEXT, LONG_PLAIN, 1.0),
    ("exploitable", LONG_PLAIN, PLAIN_TEXT, 1.0),
    ("honest", LONG_PLAIN, PLAIN_TEXT, 0.0),  # equal quality: position decides (a flip), never a win
])
def test_the_judges_apply_their_preference_through_the_prompt_files(tmp_path: Path, quality: str, chosen: str,
                                                                    rejected: str, accuracy: float) -> None:
    """Both judges, in verdict mode (Writing-RL's and eval's pairwise prompt) and scores mode (BRPO's GenRM
    prompt, scores kept within 1-10 so they parse), through `judge eval`: the preferred text chosen in both
    orders."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "p", "prompt": "Write a short story about a fox.", "chosen": chosen,
                                 "rejected": rejected}) + "\n")
    for mode, template in (("verdict", "pairwise"), ("scores", "genrm")):
        with JudgeServerProcess(mode=mode, quality=quality, first_position_bonus=0.5) as judge:
            result = call_cli("judge", "eval", "--pairs", str(pairs), "--json", "--base-url", judge.base_url,
                              "--model", "test-judge", "--template", template)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.splitlines()[-1])
        assert summary["parse_failures"] == 0 and summary["accuracy_both_orders"] == accuracy, result.stdout


def test_the_rule_reward_loads_as_verl_loads_it() -> None:
    """verl imports `reward.custom_reward_function.path` by file path, outside the package's module registry."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    path = REPO / "writing_rl/testing/learning_reward.py"
    reward = get_custom_reward_fn(OmegaConf.create({"reward": {"custom_reward_function": {
        "path": str(path), "name": "compute_score"}}}))
    assert reward is not None
    assert reward(data_source="writing", solution_str=VIVID_TEXT, ground_truth=None, extra_info={}) == 10.0


def write_job_files(folder: Path, words: list[float], correlation: list[float]) -> None:
    """A metrics file as verl's file logger writes it, and rollout dumps as `trainer.rollout_data_dir` does."""
    lines = [{"step": s + 1, "data": {"critic/score/mean": 0.1 * s, "response_length/mean": 20.0 + s,
                                      "timing_per_token_ms/gen": 3.0,
                                      "timing_s/step": 10.0 + (5.0 if s == 0 else 0.0), "judge/calls": 48.0,
                                      "watch/length_growth": w / words[0], "watch/length_reward_correlation": c}}
             for s, (w, c) in enumerate(zip(words, correlation, strict=True))]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in reversed(lines)))
    (folder / "rollouts").mkdir()
    for step, text in ((1, PLAIN_TEXT), (2, VIVID_TEXT)):
        (folder / "rollouts" / f"{step}.jsonl").write_text(json.dumps({"input": "p", "output": text}) + "\n")


def test_the_report_is_built_from_the_jobs_files(tmp_path: Path) -> None:
    write_job_files(tmp_path, words=[20, 25, 35], correlation=[0.1, 0.6, 0.7])
    steps = read_metrics(tmp_path / "metrics.jsonl")
    assert [s["critic/score/mean"] for s in steps] == pytest.approx([0.0, 0.1, 0.2])  # ordered by step
    assert fired_warnings(steps) == ["length_growth", "length_reward_correlation"]
    assert warning_steps(steps) == {"length_growth": 1, "length_reward_correlation": 2}
    assert fired_warnings([{"timing_s/step": 1.0}]) is None  # no watch (verl's own managers): not "none fired"
    rollouts = read_rollouts(tmp_path / "rollouts")
    assert win_rate_against(rollouts[2], [0.0, 10.0]) == 0.75  # beats one, ties one
    run = RunOutcome(name="brpo-exploitable", method="brpo", judge="exploitable", model="tiny", steps=steps,
                     rollouts=rollouts, wall_s=60.0,
                     evaluation={"win_rate": 0.8, "win_rate_ci": [0.7, 0.9], "length_controlled_win_rate": None})
    naive = RunOutcome(name="grpo-naive", method="grpo", judge="rule", model="tiny",
                       steps=[{"timing_s/step": 9.0, "timing_per_token_ms/gen": 4.0}] + [
                           {"timing_s/step": 5.0, "timing_per_token_ms/gen": 2.0}] * 2)
    entry = summary_entry(run, naive)
    assert entry["seconds_per_step"] == 10.0 and entry["step_time_ratio"] == 2.0  # the warm-up step left out
    assert entry["gen_ms_per_token_ratio"] == 1.5 and entry["response_tokens_mean"] == 21.0
    assert entry["judge_calls_per_step"] == 48.0 and entry["watch_warnings"] == fired_warnings(steps)
    assert {"method", "judge", "steps", "win_rate", "win_rate_ci", "length_controlled_win_rate", "watch_warnings",
            "seconds_per_step", "naive_seconds_per_step", "model"} <= set(entry)
    rows = table([entry])
    assert rows[1][2:4] == ["0.800", "[0.700, 0.900]"] and rows[1][4] == "-"
    plot = plot_curves([run], [0.0, 10.0], tmp_path / "curves.png")
    assert plot.read_bytes()[:4] == b"\x89PNG"
    report = render_markdown([entry], plot, "python benchmarks/learning.py", ["a note"])
    assert "| brpo-exploitable |" in report and "![curves](curves.png)" in report and "- a note" in report

