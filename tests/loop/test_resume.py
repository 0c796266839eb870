"""Resume: a run killed mid-round loses no label and queries no row twice."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from al_ray.cli import main
from al_ray.config import load_config
from al_ray.labels import LabelSource, SimulatedOracle
from al_ray.loop import ActiveLearningLoop


def _queries(output: Path) -> list[tuple[str, str]]:
    with open(output / "queries.csv", newline="") as stream:
        return [(row["round"], row["row_id"]) for row in csv.DictReader(stream)]


def _stored_answers(output: Path) -> set[tuple[int, str]]:
    with sqlite3.connect(output / "labels.db") as connection:
        return set(connection.execute("SELECT row_id, label FROM answers").fetchall())


class _CrashingSource(LabelSource):
    """Answers like the oracle until a given round's tasks arrive, then raises."""

    def __init__(self, oracle: SimulatedOracle, crash_round: int) -> None:
        self.oracle = oracle
        self.crash_round = crash_round

    @property
    def name(self) -> str:
        return "crashing"

    def request(self, tasks) -> None:
        if any(task.round_index == self.crash_round for task in tasks):
            raise RuntimeError("simulated crash after the round's tasks were posted")
        self.oracle.request(tasks)

    def collect(self, timeout_s: float):
        return self.oracle.collect(timeout_s)


def test_resume_mid_round_matches_uninterrupted(small_config, tmp_path):
    config = load_config(small_config(loop={"rounds": 4, "batch_size": 15}))
    reference = ActiveLearningLoop(config, output_dir=tmp_path / "reference").run()

    loop = ActiveLearningLoop(config, output_dir=tmp_path / "resumed")
    from al_ray.loop.runner import load_data

    data = load_data(config)
    truth = dict(zip(data.row_ids.tolist(), data.label_names(data.row_ids)))
    loop._label_source = _CrashingSource(SimulatedOracle(truth), crash_round=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.run()
    before = _stored_answers(tmp_path / "resumed")

    resumed = ActiveLearningLoop(config, output_dir=tmp_path / "resumed").run(resume=True)
    assert resumed.status == "completed"
    assert before <= _stored_answers(tmp_path / "resumed")
    assert _queries(tmp_path / "resumed") == _queries(tmp_path / "reference")
    assert [r.accuracy for r in resumed.rounds] == [r.accuracy for r in reference.rounds]


def test_resume_extends_rounds(small_config, tmp_path):
    config = small_config(loop={"rounds": 2, "batch_size": 10})
    output = tmp_path / "o"
    assert main(["run", str(config), "--output", str(output)]) == 0
    assert main(["run", str(config), "--output", str(output), "--resume", "--rounds", "4"]) == 0
    queries = _queries(output)
    assert len(queries) == 40
    assert len({row_id for _, row_id in queries}) == 40


@pytest.mark.timeout(300)
def test_sigkill_mid_round_then_resume(small_config, tmp_path):
    config = small_config(loop={"rounds": 8, "batch_size": 20}, data={"pool_size": 5000})
    output = tmp_path / "killed"
    command = [sys.executable, "-m", "al_ray.cli", "run", str(config), "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until round 2 is printed, then kill somewhere inside round 3.
        for line in process.stdout:
            if line.split()[1:2] == ["2"]:
                break
        time.sleep(0.15)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    before = _stored_answers(output)
    assert before

    assert main(["run", str(config), "--output", str(output), "--resume"]) == 0
    after = _stored_answers(output)
    assert before <= after
    queries = _queries(output)
    row_ids = [row_id for _, row_id in queries]
    assert len(row_ids) == len(set(row_ids)) == 8 * 20

    reference = tmp_path / "reference"
    assert main(["run", str(config), "--output", str(reference)]) == 0
    assert queries == _queries(reference)


def test_sigterm_with_ray_exits_with_hint(small_config, tmp_path):
    # --scoring ray starts Ray, whose core worker would otherwise respond to
    # SIGTERM with a native stack dump and no hint.
    config = small_config(loop={"rounds": 30, "batch_size": 5}, data={"pool_size": 400})
    output = tmp_path / "terminated"
    command = [sys.executable, "-m", "al_ray.cli", "run", str(config), "--output", str(output), "--scoring", "ray"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.split()[1:2] == ["1"]:
                break
        os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    assert process.returncode == 128 + signal.SIGTERM
    assert "al-ray: terminated by SIGTERM; continue later with --resume" in stderr
    assert "SIGTERM received" not in stderr
    assert _stored_answers(output)
