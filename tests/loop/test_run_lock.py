"""One loop per label store: a second loop is refused while the first runs, and a killed one frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from al_ray.cli import main
from al_ray.loop.run_lock import RunInProgressError, RunLock


def test_second_lock_is_refused_until_released(label_store_url):
    with RunLock(label_store_url):
        with pytest.raises(RunInProgressError, match="another al-ray run is using the label store"):
            with RunLock(label_store_url):
                pass
    # Released: the next run takes it.
    with RunLock(label_store_url):
        pass


def test_sqlite_refusal_names_the_holder(tmp_path):
    store = tmp_path / "labels.db"
    with RunLock(store):
        with pytest.raises(RunInProgressError, match=rf"pid {os.getpid()}"):
            with RunLock(store):
                pass


def test_killed_holder_leaves_no_stale_lock(label_store_url, tmp_path):
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import pathlib, time
                from al_ray.loop.run_lock import RunLock
                with RunLock({label_store_url!r}):
                    pathlib.Path({str(ready)!r}).write_text("held")
                    time.sleep(120)
                """
            ),
        ]
    )
    try:
        for _ in range(300):
            if ready.exists() or holder.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), "the holder process did not take the lock"
        with pytest.raises(RunInProgressError), RunLock(label_store_url):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with RunLock(label_store_url):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_run_refused_while_another_holds_the_store(small_config, tmp_path, capsys):
    config = small_config()
    output = tmp_path / "out"
    assert main(["run", str(config), "--output", str(output), "--rounds", "1"]) == 0
    with RunLock(output / "labels.db"):
        code = main(["run", str(config), "--output", str(output), "--more-rounds", "1"])
    assert code == 2
    assert "another al-ray run is using the label store" in capsys.readouterr().err
    # Nothing was done while refused; the same command works once the other run ends.
    assert main(["run", str(config), "--output", str(output), "--more-rounds", "1"]) == 0
