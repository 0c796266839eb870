"""The label store shared between processes, and its durability under SIGKILL.

Each test starts a real Python subprocess that opens the same store: a SQLite
file, and for the writer-and-reader test also a PostgreSQL schema.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from contextlib import closing
import subprocess
import sys
from pathlib import Path

import pytest

from al_ray.labels import LabelStore

pytestmark = pytest.mark.timeout(120)

# Posts and answers rows 0, 1, 2, ... one transaction each and prints every
# row_id after its answer is committed. Runs until killed, or up to argv[2] rows.
WRITER = """
import sys
from al_ray.labels import Answer, LabelStore

path, limit = sys.argv[1], int(sys.argv[2])
with LabelStore(path) as store:
    row_id = 0
    while limit < 0 or row_id < limit:
        store.post_tasks(0, [row_id])
        store.add_answers([Answer(row_id, str(row_id % 10), "oracle", 1000.0 + row_id)])
        print(row_id, flush=True)
        row_id += 1
"""


def start_writer(path: Path | str, limit: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(limit)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expected_labels(n_rows: int) -> dict[int, str]:
    return {row_id: str(row_id % 10) for row_id in range(n_rows)}


@pytest.mark.parametrize("kill_after", [1, 25])
def test_sigkill_keeps_committed(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "labels.db"
    printed: list[int] = []
    with start_writer(path, limit=-1) as writer:
        try:
            assert writer.stdout is not None
            for line in writer.stdout:
                printed.append(int(line))
                if len(printed) == kill_after:
                    break
            if len(printed) < kill_after:
                writer.wait()
                pytest.fail(f"writer exited early: {writer.stderr.read() if writer.stderr else ''}")
            os.kill(writer.pid, signal.SIGKILL)
            # Lines printed between the break and the kill are committed too.
            printed.extend(int(line) for line in writer.stdout if line.endswith("\n"))
        finally:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL

    n_printed = len(printed)
    assert printed == list(range(n_printed))
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    with LabelStore(path) as store:
        labels = store.labels()
        queried = store.queried_row_ids().tolist()
        answered = {task.row_id for task in store.tasks(status="answered")}
    # The writer may have committed row n_printed (its task, or its task and
    # answer) before printing it, but nothing beyond.
    assert {row_id: labels[row_id] for row_id in range(n_printed)} == expected_labels(n_printed)
    assert set(labels) <= set(range(n_printed + 1))
    assert queried in (list(range(n_printed)), list(range(n_printed + 1)))
    assert answered == set(labels)


def test_writer_and_reader_processes(label_store_url: str) -> None:
    path = label_store_url
    n_rows = 60
    with LabelStore(path) as store:
        writer = start_writer(path, limit=n_rows)
        ticks = 0
        sizes: list[int] = []
        while writer.poll() is None:
            labels = store.labels()
            # The writer commits rows in order, so every snapshot is a prefix.
            assert labels == expected_labels(len(labels))
            sizes.append(len(labels))
            ticks += 1
            store.set_meta("reader_ticks", str(ticks))
        _, stderr = writer.communicate()
        assert writer.returncode == 0, stderr

        assert sizes == sorted(sizes)
        assert store.labels() == expected_labels(n_rows)
        assert store.get_meta("reader_ticks") == str(ticks)


def test_writer_commits_past_open_read(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    LabelStore(path).close()
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM answers").fetchone() == (0,)

        # WAL lets the writer commit while this read transaction is open.
        writer = start_writer(path, limit=20)
        stdout, stderr = writer.communicate(timeout=60)
        assert writer.returncode == 0, stderr
        assert stdout.split() == [str(row_id) for row_id in range(20)]

        assert reader.execute("SELECT count(*) FROM answers").fetchone() == (0,)
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM answers").fetchone() == (20,)
    finally:
        reader.close()
