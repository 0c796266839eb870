"""A round resumed after its tasks were posted keeps the strategy that selected its rows."""

from __future__ import annotations

import pytest

from al_ray.config import load_config
from al_ray.labels import LabelSource, LabelStore, SimulatedOracle
from al_ray.loop import ActiveLearningLoop
from al_ray.loop.runner import load_data
from al_ray.monitoring.audit import AuditLog
from al_ray.tracking.registry import ModelRegistry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CRASH_ROUND = 2
SCORING_METRICS = ("scoring_seconds", "scoring_rows_per_s", "scoring_rows", "scoring_on_ray")


class _StopAfterPosting(LabelSource):
    """Answer like the oracle until the tasks of one round arrive, then raise.

    The loop requests a round's answers only after it marked the round
    ``queried``, so the run stops in that state, as a kill would leave it.
    """

    def __init__(self, oracle: SimulatedOracle, crash_round: int) -> None:
        self.oracle = oracle
        self.crash_round = crash_round

    @property
    def name(self) -> str:
        return "stop-after-posting"

    def request(self, tasks) -> None:
        if any(task.round_index == self.crash_round for task in tasks):
            raise RuntimeError("stopped after the round's tasks were posted")
        self.oracle.request(tasks)

    def collect(self, timeout_s: float):
        return self.oracle.collect(timeout_s)


def test_resumed_queried_round_keeps_strategy(small_config, tmp_path):
    config = load_config(
        small_config(
            loop={"rounds": 3, "batch_size": 10},
            tracking={"enabled": True, "register_models": True, "log_model": False},
            monitoring={"audit": {"enabled": True}},
        )
    )
    output = tmp_path / "run"
    data = load_data(config)
    truth = dict(zip(data.row_ids.tolist(), data.label_names(data.row_ids)))
    stopped = ActiveLearningLoop(config, output_dir=output, label_source=_StopAfterPosting(SimulatedOracle(truth), CRASH_ROUND))
    with pytest.raises(RuntimeError, match="stopped after the round's tasks were posted"):
        stopped.run()
    with LabelStore(output / "labels.db") as store:
        assert store.round_status(CRASH_ROUND) == "queried"

    resumed = ActiveLearningLoop(config, output_dir=output).run(resume=True)

    assert resumed.status == "completed"
    name = f"{config.name}-{config.strategy.name}"
    registry = ModelRegistry(f"sqlite:///{(output / 'mlflow.db').resolve()}")
    strategies = {info.round_index: info.strategy for info in (registry.describe(name, v) for v in (1, 2, 3, 4))}
    assert strategies == {0: "initial labeled set", 1: "margin", 2: "margin", 3: "margin"}
    with AuditLog(output / "audit.db") as log:
        entries = {entry.data["round"]: entry.data["lineage"]["strategy"] for entry in log.entries(kind="model_version")}
    assert entries[CRASH_ROUND] == "margin"
    with LabelStore(output / "labels.db") as store:
        metrics = {row["round_index"]: row["metrics"] for row in store.round_records()}
    for key in SCORING_METRICS:
        assert key not in metrics[CRASH_ROUND]
        assert key in metrics[CRASH_ROUND + 1]
    assert metrics[CRASH_ROUND]["cold_start"] == 0.0
    assert resumed.rounds[CRASH_ROUND].scoring_path == "-"
