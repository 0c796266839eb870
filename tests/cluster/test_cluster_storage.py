"""Reading and writing locations through pyarrow's file systems, with local paths and file:// URIs."""

from __future__ import annotations

import pytest

from al_ray.cluster.storage import (
    is_object_store_uri,
    local_copy,
    probe_readable,
    probe_writable,
)
from al_ray.errors import DataError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/pool.parquet", True),
        ("gs://bucket/pool.csv", True),
        ("hdfs://namenode:8020/pool.csv", True),
        ("abfss://container@account.dfs.core.windows.net/pool.csv", True),
        ("file:///data/pool.csv", False),
        ("/mnt/shared/pool.csv", False),
        ("data/pool.csv", False),
    ],
)
def test_object_store_schemes(value, expected):
    assert is_object_store_uri(value) is expected


def test_readable_local_and_file_uri(tmp_path):
    data = tmp_path / "pool.csv"
    data.write_text("x,label\n1,a\n")
    assert probe_readable(str(data)) == "12 bytes"
    assert probe_readable(f"file://{data}") == "12 bytes"


def test_missing_file_named(tmp_path):
    with pytest.raises(DataError, match="not found"):
        probe_readable(str(tmp_path / "nope.csv"))


def test_folder_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        probe_readable(str(tmp_path))


def test_unknown_scheme_named(tmp_path):
    with pytest.raises(DataError, match="cannot open 'nosuch://bucket/x.csv'"):
        probe_readable("nosuch://bucket/x.csv")


def test_writable_existing_folder_left_clean(tmp_path):
    assert probe_writable(str(tmp_path)) == "created and deleted a probe file"
    assert list(tmp_path.iterdir()) == []


def test_writable_new_folder_removed_again(tmp_path):
    target = tmp_path / "a" / "b" / "out"
    message = probe_writable(f"file://{target}")
    assert "does not exist yet" in message
    assert not (tmp_path / "a").exists()


def test_unwritable_folder_named(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DataError, match="cannot write into"):
        probe_writable(str(blocker / "out"))


def test_local_copy_of_local_path_is_the_path(tmp_path):
    data = tmp_path / "pool.csv"
    data.write_text("x\n")
    with local_copy(str(data)) as path:
        assert path == data


def test_local_copy_of_file_uri_is_its_path(tmp_path):
    data = tmp_path / "pool data.csv"
    data.write_text("x\n")
    with local_copy(data.as_uri()) as path:
        assert path == data
