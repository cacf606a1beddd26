"""Finding A1 through verl's real reward loop (local Ray, verl's reward workers, our coordinator): a hand edit
and an `index set` made while judgements are in flight survive the step's writes and apply next step."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import ray
from test_writing_rl_reward_loop import Job

from writing_rl.curriculum.index_file import read_index, render_index
from writing_rl.testing.reward_loop import reward_workers, rollout_data, send
from writing_rl.testing.server_process import JudgeServerProcess


def send_step(job: Job, workers: list, tokenizer: Any, qualities: dict[str, list[float]]) -> dict[str, list]:
    refs = {}
    for row in job.rows:
        pid = row["extra_info"]["index"]
        uid = f"{pid}-{uuid.uuid4()}"
        refs[pid] = [send(workers, rollout_data(tokenizer, row, f"{pid} s{s} QUALITY={q:g}", uid, s))
                     for s, q in enumerate(qualities[pid])]
    return refs


def rungs(results: list[dict]) -> set[int]:
    return {r["reward_extra_info"]["wrl_rung"] for r in results}


@pytest.mark.slow
def test_A1_edits_made_while_judgements_are_in_flight_are_kept(
        ray_local: None, tokenizer_dir: str, tokenizer: Any, tmp_path: Path) -> None:
    lose = [1, 1, 1, 1]
    with JudgeServerProcess(mode="verdict") as server:
        job = Job(tmp_path, tokenizer_dir, server, n_prompts=4)
        with reward_workers(job.config) as workers:
            job.step(workers, tokenizer, {"p0": [9, 1, 1, 1], "p1": lose, "p2": lose, "p3": lose})
            coordinator = job.coordinator()
            ray.get(coordinator.step_metrics.remote())
            assert read_index(job.index) == {"p0": 1, "p1": 0, "p2": 0, "p3": 0}
            server.configure(latency_s=1.5)
            in_flight = send_step(job, workers, tokenizer, {"p0": [6, 1, 1, 1], "p1": lose, "p2": lose, "p3": lose})
            time.sleep(0.5)  # the judge is answering now
            state = read_index(job.index)  # a person opens the file, sets p2 to 2 and saves
            tmp = job.index.with_name("editor.tmp")
            tmp.write_text(render_index({**state, "p2": 2}))
            tmp.replace(job.index)
            queued = subprocess.run([sys.executable, "-m", "writing_rl.cli", "index", "set", "p1=1", "--file",
                                     str(job.index)], capture_output=True, text=True, timeout=120)
            assert queued.returncode == 0, queued.stderr
            step2 = {pid: ray.get(refs, timeout=180) for pid, refs in in_flight.items()}
            server.configure(latency_s=0.0)
            metrics = ray.get(coordinator.step_metrics.remote())  # the trainer's on_step_end
            after_step_2 = read_index(job.index)
            step3 = job.step(workers, tokenizer, {"p0": lose, "p1": lose, "p2": lose, "p3": lose})
    assert rungs(step2["p0"]) == {1}
    assert after_step_2 == {"p0": 2, "p1": 1, "p2": 2, "p3": 0}  # the promotion, the edit and the queued edit
    assert metrics["writing_rl/index_edits_adopted"] == 2 and metrics["writing_rl/index_edits_rejected"] == 0
    assert rungs(step3["p0"]) == {2} and rungs(step3["p1"]) == {1} and rungs(step3["p2"]) == {2}
