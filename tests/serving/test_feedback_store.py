"""The SQLite store of uncertain served rows: exact round trip, atomic appends, reading on."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from al_ray.serving.errors import ServingError
from al_ray.serving.feedback import UncertainRowStore


def test_store_round_trip(tmp_path):
    store = UncertainRowStore(tmp_path / "runs" / "uncertain.db")
    features = np.array([[0.1, 2.0], [1e-300, -7.5]])
    assert store.append(features, np.array([0.9, 0.6]), "3", [17, 4], created_at=1700000000.0) == 2
    assert store.append(np.array([[5.0, 6.0]]), np.array([0.7]), "4") == 1

    ids, row_ids, read, versions = store.read_since(0)
    np.testing.assert_array_equal(ids, [1, 2, 3])
    assert row_ids == [17, 4, None]
    np.testing.assert_array_equal(read, [[0.1, 2.0], [1e-300, -7.5], [5.0, 6.0]])
    assert versions == ["3", "3", "4"]
    assert store.count() == 3


def test_store_read_since_last_id(tmp_path):
    store = UncertainRowStore(tmp_path / "uncertain.db")
    store.append(np.zeros((3, 2)), np.full(3, 0.8), "3", [1, 2, 3])
    first = store.read_since(0, limit=2)
    assert first.row_ids == [1, 2]
    rest = store.read_since(int(first.ids[-1]))
    assert rest.row_ids == [3]
    assert store.read_since(int(rest.ids[-1])).features.shape == (0, 0)


def test_store_append_atomic(tmp_path):
    store = UncertainRowStore(tmp_path / "uncertain.db")
    # The second row_id overflows SQLite's 64-bit integer, so the whole insert fails.
    with pytest.raises(OverflowError):
        store.append(np.zeros((2, 2)), np.full(2, 0.8), "3", [1, 2**64])
    assert store.count() == 0


def test_store_wal(tmp_path):
    path = tmp_path / "uncertain.db"
    UncertainRowStore(path).append(np.zeros((1, 2)), np.ones(1), "3")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_rejects_mixed_widths(tmp_path):
    store = UncertainRowStore(tmp_path / "uncertain.db")
    store.append(np.zeros((1, 2)), np.ones(1), "3")
    store.append(np.zeros((1, 3)), np.ones(1), "4")
    with pytest.raises(ServingError, match=r"contains rows with \[2, 3\] features after id 0; keep one store per feature set"):
        store.read_since(0)


def test_store_rejects_mismatched_input(tmp_path):
    store = UncertainRowStore(tmp_path / "uncertain.db")
    with pytest.raises(ServingError, match=r"got 1 row_ids for 2 rows; give one per row"):
        store.append(np.zeros((2, 2)), np.ones(2), "3", [1])
    with pytest.raises(ServingError, match=r"one uncertainty per row, got \(2, 2\) and 3 uncertainties"):
        store.append(np.zeros((2, 2)), np.ones(3), "3")


def test_store_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ServingError, match=r"cannot create the folder of feedback store .*choose a writable path"):
        UncertainRowStore(blocker / "uncertain.db")


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=st.floats(allow_nan=False)))
def test_store_features_exact(tmp_path_factory, features):
    store = UncertainRowStore(tmp_path_factory.mktemp("store") / "uncertain.db")
    store.append(features, np.ones(features.shape[0]), "3")
    np.testing.assert_array_equal(store.read_since(0).features, features)
