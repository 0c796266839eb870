"""The loop with people: one log line per round while it waits, and a resume that keeps the labeling settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from labeling_service_support import write_human_config

from al_ray.cli import main
from al_ray.config import load_config
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.queue import LabelQueue
from al_ray.labeling.source import HumanLabelSource
from al_ray.labels import Answer, LabelSource, LabelStore, SimulatedOracle, Task
from al_ray.loop import ActiveLearningLoop
from al_ray.loop.runner import load_data
from al_ray.loop.state import config_fingerprint

SMALL_RUN = {
    "data": {"initial_labeled": 10},
    "model": {"estimator": "logistic_regression", "params": {"max_iter": 100}, "fit_on": "driver"},
    "loop": {"rounds": 1, "batch_size": 4, "collect_timeout_s": 60},
    "scoring": {"mode": "local"},
}


class _SlowPeople(LabelSource):
    """Answers like the oracle, but only from the second collect of a request on, as people would."""

    def __init__(self, oracle: SimulatedOracle) -> None:
        self.oracle = oracle
        self.collects = 0

    @property
    def name(self) -> str:
        return "slow_people"

    def request(self, tasks: Sequence[Task]) -> None:
        self.collects = 0
        self.oracle.request(tasks)

    def collect(self, timeout_s: float) -> list[Answer]:
        self.collects += 1
        return self.oracle.collect(timeout_s) if self.collects > 1 else []

    def waiting_hint(self) -> str:
        return "open the page"


def _waiting_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "waiting for" in record.getMessage()]


@pytest.mark.slow
def test_waiting_logged_once_per_round(tmp_path: Path, caplog) -> None:
    config = load_config(write_human_config(tmp_path, **SMALL_RUN))
    data = load_data(config)
    source = _SlowPeople(SimulatedOracle(dict(zip(data.row_ids.tolist(), data.label_names(data.row_ids)))))
    caplog.set_level(logging.WARNING, logger="al_ray.loop.runner")

    ActiveLearningLoop(config, output_dir=tmp_path / "run", label_source=source).run()

    lines = _waiting_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith("round 0: waiting for 10 answers from slow_people (up to ")
    assert lines[0].endswith(" s); open the page")
    assert lines[1].startswith("round 1: waiting for 4 answers from slow_people (up to ")
    assert all(record.levelno == logging.WARNING for record in caplog.records if "waiting for" in record.getMessage())


@pytest.mark.slow
def test_oracle_run_logs_no_wait(tmp_path: Path, caplog) -> None:
    config = load_config(write_human_config(tmp_path, labels={"source": "oracle"}, **SMALL_RUN))
    caplog.set_level(logging.WARNING, logger="al_ray.loop.runner")

    ActiveLearningLoop(config, output_dir=tmp_path / "run").run()

    assert _waiting_lines(caplog) == []


def test_human_source_hint_names_serve(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "labels.db") as store:
        source = HumanLabelSource(LabelQueue(store, ["0", "1"], LabelingConfig()))

        hint = source.waiting_hint()

    assert "al-ray label serve CONFIG" in hint
    assert "--output RUN_DIR" in hint


def test_oracle_has_no_hint() -> None:
    assert SimulatedOracle({1: "7"}).waiting_hint() == ""


# Resuming: the settings that turn answers into labels must stay.


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("answers_per_task", 3),
        ("aggregation", "majority"),
        ("tie_rule", "random"),
        ("max_answers_per_task", 5),
        ("min_answers_per_annotator", 5),
    ],
)
def test_resume_with_other_aggregation_rejected(tmp_path: Path, capsys, setting: str, value) -> None:
    original = write_human_config(tmp_path, **SMALL_RUN)
    store_path = tmp_path / "run" / "labels.db"
    store_path.parent.mkdir()
    # What the run stored when it started with the original config.
    with LabelStore(store_path) as store:
        store.set_meta("config_fingerprint", config_fingerprint(load_config(original)))
    changed = write_human_config(tmp_path, labeling={setting: value}, **SMALL_RUN)

    status = main(["run", str(changed), "--resume"])

    assert status == 2
    error = capsys.readouterr().err
    assert "the config differs from the run being resumed in labeling.aggregation: defaults -> {" in error
    assert f"'{setting}': {value!r}" in error
    assert "resume with the original settings" in error


def test_fingerprint_keeps_default_labeling_out(tmp_path: Path) -> None:
    # A run stored before the labeling settings were fingerprinted has the same fingerprint.
    fingerprint = json.loads(config_fingerprint(load_config(write_human_config(tmp_path))))

    assert sorted(fingerprint) == ["data", "loop.batch_size", "model", "monitoring.outliers", "seed", "strategy"]


def test_fingerprint_ignores_settings_that_do_not_change_labels(tmp_path: Path) -> None:
    base = config_fingerprint(load_config(write_human_config(tmp_path)))
    other = load_config(
        write_human_config(
            tmp_path, labeling={"gold_rate": 0.2, "lease_timeout_s": 60, "quota": 0.5, "port": 9000}
        )
    )

    assert config_fingerprint(other) == base


def test_fingerprint_of_oracle_run_ignores_labeling(tmp_path: Path) -> None:
    base = config_fingerprint(load_config(write_human_config(tmp_path, labels={"source": "oracle"})))
    other = load_config(
        write_human_config(tmp_path, labels={"source": "oracle"}, labeling={"answers_per_task": 3})
    )

    assert config_fingerprint(other) == base


def test_fingerprint_back_to_defaults_detected(tmp_path: Path) -> None:
    from al_ray.loop.state import describe_difference

    three = config_fingerprint(load_config(write_human_config(tmp_path, labeling={"answers_per_task": 3})))
    default = config_fingerprint(load_config(write_human_config(tmp_path)))

    assert three != default
    assert describe_difference(three, default).startswith("labeling.aggregation: {")
    assert describe_difference(three, default).endswith("} -> defaults")
