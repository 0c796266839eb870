"""The simulated oracle, alone and feeding a label store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from al_ray.errors import DataError
from al_ray.labels import Answer, LabelSource, LabelStore, SimulatedOracle, Task

TRUTH = {0: "cat", 1: "dog", 2: "cat", 3: "bird"}


def pending(*row_ids: int) -> list[Task]:
    return [Task(row_id, 0, None, None, "pending") for row_id in row_ids]


def test_oracle_answers_requested_rows() -> None:
    oracle = SimulatedOracle(TRUTH, clock=lambda: 1234.5)
    oracle.request(pending(3, 1))
    assert oracle.n_pending == 2
    assert oracle.collect(timeout_s=0.0) == [
        Answer(3, "bird", "oracle", 1234.5),
        Answer(1, "dog", "oracle", 1234.5),
    ]


def test_oracle_second_collect_empty() -> None:
    oracle = SimulatedOracle(TRUTH)
    oracle.request(pending(0))
    assert len(oracle.collect(timeout_s=1.0)) == 1
    assert oracle.collect(timeout_s=1.0) == []
    assert oracle.n_pending == 0


def test_oracle_repeat_request_once() -> None:
    oracle = SimulatedOracle(TRUTH, annotator="sim", clock=lambda: 7.0)
    oracle.request(pending(2, 0))
    oracle.request(pending(0, 2))
    assert oracle.collect(timeout_s=0) == [
        Answer(2, "cat", "sim", 7.0),
        Answer(0, "cat", "sim", 7.0),
    ]


def test_oracle_unknown_row() -> None:
    oracle = SimulatedOracle(TRUTH)
    with pytest.raises(
        DataError, match=r"has no ground-truth label for row_ids 9, 12\. Build the oracle"
    ):
        oracle.request(pending(1, 9, 12))
    # The call is rejected whole: row 1 is not pending either.
    assert oracle.collect(timeout_s=0) == []


def test_oracle_is_label_source() -> None:
    oracle = SimulatedOracle(TRUTH)
    assert isinstance(oracle, LabelSource)
    assert oracle.name == "simulated_oracle"
    assert oracle.annotator == "oracle"


def test_oracle_copies_truth() -> None:
    truth = {np.int64(5): "A"}
    oracle = SimulatedOracle(truth)
    truth[np.int64(5)] = "B"
    oracle.request(pending(5))
    assert [answer.label for answer in oracle.collect(timeout_s=0)] == ["A"]


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ({0: 7}, r"ground_truth label of row_id 0 must be a non-empty string .* got 7"),
        ({0: ""}, r"ground_truth label of row_id 0 must be a non-empty string"),
        ({"0": "a"}, r"ground_truth keys must be integer row ids, got '0' of type str"),
        ([("a", 0)], r"ground_truth must be a mapping of row_id to class name, got list"),
    ],
)
def test_oracle_invalid_truth(truth: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        SimulatedOracle(truth)  # type: ignore[arg-type]


def test_oracle_invalid_timeout() -> None:
    oracle = SimulatedOracle(TRUTH)
    with pytest.raises(DataError, match="timeout_s must be a number of seconds >= 0, got -1"):
        oracle.collect(timeout_s=-1)


def test_oracle_feeds_store(tmp_path: Path) -> None:
    oracle = SimulatedOracle(TRUTH, clock=lambda: 50.0)
    with LabelStore(tmp_path / "labels.db") as store:
        store.post_tasks(0, [2, 3])
        oracle.request(store.tasks(status="pending"))
        result = store.add_answers(oracle.collect(timeout_s=0))
        assert result.stored == 2
        assert store.labels() == {2: "cat", 3: "bird"}
        assert store.tasks(status="pending") == []
