"""Jobs on a real Ray head node started by this module (`ray start --head`, token authentication off)."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from cluster_head import start_head

from al_ray.cli import main
from al_ray.cluster.scheduled import run_scheduled_round
from al_ray.cluster.submit import connect, submit_round

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def head():
    node = start_head()
    yield node
    node.stop()


def _submitted_id(out: str) -> str:
    match = re.search(r"submitted job (\S+)", out)
    assert match, out
    return match.group(1)


def test_submit_follow_succeeds(head, cluster_config, capsys, tmp_path):
    config = cluster_config()
    assert main(["submit", str(config), "--address", head.address, "--follow", "--timeout", "240"]) == 0
    out = capsys.readouterr().out
    submission_id = _submitted_id(out)
    assert f"job {submission_id} SUCCEEDED" in out
    # The round table streamed from the job's driver: rounds 0, 1 and 2.
    assert re.search(r"margin\s+2\s+60\s", out), out
    # A same-machine job writes the output to the folder the config names.
    curve = (tmp_path / "out" / "learning_curve.csv").read_text().splitlines()
    assert [row.split(",")[:2] for row in curve[1:]] == [["0", "20"], ["1", "40"], ["2", "60"]]

    assert main(["jobs", "status", submission_id, "--address", head.address]) == 0
    assert capsys.readouterr().out.startswith(f"{submission_id}: SUCCEEDED")
    assert main(["jobs", "logs", submission_id, "--address", head.address]) == 0
    assert "completed" in capsys.readouterr().out


def test_failed_job_reports_log_tail(head, cluster_config, capsys):
    # LogisticRegression rejects C <= 0 when it is fitted (in the job's driver, which skips Ray's start-up).
    config = cluster_config(model={"params": {"max_iter": 100, "C": -1.0}, "fit_on": "driver"})
    assert main(["submit", str(config), "--address", head.address, "--follow", "--timeout", "240"]) == 1
    captured = capsys.readouterr()
    submission_id = _submitted_id(captured.out)
    assert f"al-ray: job {submission_id} FAILED: Job entrypoint command failed with exit code" in captured.err
    tail = captured.err.split("log lines:\n", 1)[1].splitlines()
    assert 1 <= len(tail) <= 20
    assert "The 'C' parameter of LogisticRegression must be a float" in tail[-1]
    assert "\x1b[" not in captured.err


def test_scheduled_rounds_continue(head, cluster_config, tmp_path):
    # What the Airflow task runs each night: the first submission starts the run, the next adds a round.
    config = cluster_config(loop={"rounds": 1, "batch_size": 20}, model={"params": {"max_iter": 100}, "fit_on": "driver"})
    curve = tmp_path / "out" / "learning_curve.csv"

    first = run_scheduled_round(config, head.address, timeout_s=240)
    assert first["status"] == "SUCCEEDED"
    assert [row.split(",")[:2] for row in curve.read_text().splitlines()[1:]] == [["0", "20"], ["1", "40"]]

    second = run_scheduled_round(config, head.address, timeout_s=240)
    assert second["status"] == "SUCCEEDED"
    assert second["submission_id"] != first["submission_id"]
    rows = [row.split(",")[:2] for row in curve.read_text().splitlines()[1:]]
    assert rows == [["0", "20"], ["1", "40"], ["2", "60"]]


def test_submit_round_without_wait(head, cluster_config):
    config = cluster_config(model={"params": {"max_iter": 100, "C": -1.0}, "fit_on": "driver"})
    submitted = []
    outcome = submit_round(config, head.address, wait=False, on_submitted=submitted.append)
    assert submitted == [outcome.submission_id]
    assert outcome.status in ("PENDING", "RUNNING", "FAILED")
    pieces = []
    final = connect(head.address, timeout_s=10).follow(outcome.submission_id, on_log=pieces.append, timeout_s=240)
    assert final.status == "FAILED"
    assert final.exit_code == 1
    assert final.log_tail
    assert "Running entrypoint for job" in "".join(pieces)


def test_stop_running_job(head, capsys):
    from ray.job_submission import JobSubmissionClient

    submission_id = JobSubmissionClient(head.address).submit_job(entrypoint="sleep 120")
    assert main(["jobs", "stop", submission_id, "--address", head.address]) == 0
    assert f"job {submission_id} STOPPED" in capsys.readouterr().out
    assert main(["jobs", "logs", submission_id, "--address", head.address, "--follow"]) == 3
    assert f"job {submission_id} STOPPED" in capsys.readouterr().out
    assert main(["jobs", "stop", submission_id, "--address", head.address]) == 0
    assert "was not running; it is STOPPED" in capsys.readouterr().out


def test_unknown_job_named(head, capsys):
    assert main(["jobs", "status", "no-such-job", "--address", head.address]) == 2
    assert "no job 'no-such-job' on the Ray cluster" in capsys.readouterr().err


def test_check_reaches_dashboard(head, cluster_config, capsys):
    assert main(["check", str(cluster_config()), "--address", head.address]) == 0
    assert "ray           ok    Ray 2.60.0" in capsys.readouterr().out


def test_closed_port_fails_fast(cluster_config, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    assert main(["submit", str(cluster_config()), "--address", f"http://127.0.0.1:{port}"]) == 2
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert f"the Ray dashboard at http://127.0.0.1:{port} is unreachable" in err
    assert "`ray status`" in err


def test_silent_server_times_out(cluster_config, capsys):
    # A listener that accepts connections and never responds, like a hung dashboard.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        config = cluster_config(cluster={"request_timeout_s": 1.0})
        address = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        assert main(["submit", str(config), "--address", address]) == 2
        assert time.monotonic() - started < 10
        assert "timed out (timeout 1 s)" in capsys.readouterr().err
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
