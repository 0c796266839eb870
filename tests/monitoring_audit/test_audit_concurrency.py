"""Concurrent appends from threads and from separate processes keep one unforked chain."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import pytest

from al_ray.monitoring.audit import AuditLog

THREADS = 6
PER_THREAD = 20

# A separate process: it opens the log, marks itself ready, waits for the go
# file, then appends one entry per transaction.
APPENDER = textwrap.dedent(
    """
    import os, pathlib, sys, time
    from al_ray.monitoring.audit import AuditLog

    location, name, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with AuditLog(location) as log:
        pathlib.Path(go + "." + name).touch()
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.0005)
        for i in range(count):
            log.append("label", name, f"{name}-{i}", {"i": i})
            # Real appenders pause between entries, which lets the other process in.
            time.sleep(0.001)
    """
)


def check_single_chain(log: AuditLog, expected: int) -> list:
    assert log.verify() == []
    entries = log.entries()
    assert [entry.seq for entry in entries] == list(range(1, expected + 1))
    assert len({entry.prev_hash for entry in entries}) == expected
    return entries


def test_threads_append_one_chain(audit_location):
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def append(index: int) -> None:
        try:
            # Half the threads share one AuditLog; the others open their own.
            log = shared if index % 2 else AuditLog(audit_location)
            start.wait()
            for i in range(PER_THREAD):
                log.append("label", f"thread{index}", f"{index}-{i}", {"i": i})
            if log is not shared:
                log.close()
        except BaseException as error:  # noqa: BLE001 (the main thread asserts that none was raised)
            errors.append(error)

    with AuditLog(audit_location) as shared:
        threads = [threading.Thread(target=append, args=(index,)) for index in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        entries = check_single_chain(shared, THREADS * PER_THREAD)
    assert Counter(entry.actor for entry in entries) == {f"thread{index}": PER_THREAD for index in range(THREADS)}


@pytest.mark.slow
def test_two_processes_append_one_chain(audit_location, tmp_path):
    count = 60
    go = tmp_path / "go"
    AuditLog(audit_location).close()  # creates the table once, before the race
    processes = [
        subprocess.Popen([sys.executable, "-c", APPENDER, audit_location, name, str(count), str(go)])
        for name in ("loop", "labeling")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{name}").exists() for name in ("loop", "labeling")):
        assert time.monotonic() < deadline, "the appender processes did not start within 60 s"
        time.sleep(0.01)
    go.touch()
    for process in processes:
        assert process.wait(timeout=90) == 0
    with AuditLog(audit_location) as log:
        entries = check_single_chain(log, 2 * count)
    actors = [entry.actor for entry in entries]
    assert Counter(actors) == {"loop": count, "labeling": count}
    # Each process's own entries stay in the order it wrote them.
    for name in ("loop", "labeling"):
        assert [entry.data["i"] for entry in entries if entry.actor == name] == list(range(count))
