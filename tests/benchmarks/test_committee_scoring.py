"""The committee-scoring benchmark: both options select the same rows, the CSV has its columns."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from al_ray.errors import ScoringError
from al_ray.strategies import make_strategy
from benchmarks.committee_scoring import (
    Settings,
    block_candidates,
    build_pool,
    committee_strategies,
    measure,
    write_csv,
)

EXPECTED_COLUMNS = [
    "rows",
    "features",
    "members",
    "strategy",
    "n",
    "a_s",
    "b_s",
    "a_rows_per_s",
    "b_rows_per_s",
    "b_over_a",
    "a_model_bytes",
    "a_block_bytes",
    "b_block_bytes",
    "b_proba_bytes",
    "same_selection",
]


def test_options_same_rows_and_csv(ray_local, tmp_path):
    settings = Settings(
        sizes=[1500], members=3, labeled=60, n=20, repeats=1, batch_rows=256, num_blocks=4, warm_up=False
    )
    run = measure(settings)
    [measurement] = run.measurements
    assert run.first_call_a_s is None
    assert len(measurement.a_selection) == 20
    np.testing.assert_array_equal(measurement.a_selection, measurement.b_selection)
    assert measurement.same_selection
    # 1500 rows x 784 float32 features plus int64 row ids; every member reads every block.
    pool_bytes = 1500 * 784 * 4 + 1500 * 8
    assert measurement.a_block_bytes == pool_bytes
    assert measurement.b_block_bytes == 3 * pool_bytes

    path = tmp_path / "results" / "committee_scoring.csv"
    write_csv(run.measurements, path)
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == EXPECTED_COLUMNS
    assert len(rows) == 2
    assert rows[1][0] == "1500"
    assert rows[1][-1] == "True"
    assert [entry.name for entry in path.parent.iterdir()] == ["committee_scoring.csv"]


def test_block_candidates_top_disagreement():
    row_ids = np.array([10, 11, 12], dtype=np.int64)
    # Both members agree on rows 10 and 12 and split their votes on row 11.
    first = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    second = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]])
    candidates = block_candidates(make_strategy("vote_entropy"), 1, 7, (row_ids, first), (row_ids, second))
    np.testing.assert_array_equal(candidates.batch.row_ids, [11])
    # Vote entropy of one vote per class out of two: ln 2.
    np.testing.assert_allclose(candidates.utilities, [np.log(2.0)])


def test_block_candidates_rows_mismatch():
    first = (np.array([1, 2]), np.full((2, 2), 0.5))
    second = (np.array([1, 3]), np.full((2, 2), 0.5))
    with pytest.raises(ScoringError, match="member 1 returned other rows than member 0"):
        block_candidates(make_strategy("bald"), 1, 0, first, second)


def test_build_pool_repeats_rows():
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    pool = build_pool(features, 7, num_blocks=2)
    np.testing.assert_array_equal(pool.row_ids, np.arange(7))
    np.testing.assert_array_equal(pool.features[:, 0], [0, 2, 4, 0, 2, 4, 0])


def test_committee_strategies_list():
    names = committee_strategies()
    for name in ("bald", "consensus_entropy", "max_disagreement", "vote_entropy"):
        assert name in names
    # Margin reads one model's probabilities, not a committee's.
    assert "margin" not in names
    assert names == sorted(names)
