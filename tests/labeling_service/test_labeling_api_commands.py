"""The `al-ray label` commands on a real run folder, and a whole human-labeled run through them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from labeling_service_support import write_human_config

from al_ray.cli import main
from al_ray.config import load_config
from al_ray.data import load_shipped
from al_ray.labeling.errors import AuthenticationError
from al_ray.labeling.queue import Annotator, LabelQueue
from al_ray.labeling.schema import annotations_table, queue_items_table
from al_ray.labeling.service.server import is_loopback
from al_ray.labels import LabelStore


@pytest.fixture
def run_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A config and the label store its run would create, with rows 0-3 posted and enqueued as round-1 tasks."""
    config_path = write_human_config(tmp_path)
    config = load_config(config_path)
    store_path = tmp_path / "run" / "labels.db"
    with LabelStore(store_path) as store:
        store.begin_round(1)
        store.post_tasks(1, [0, 1, 2, 3])
        store.mark_round_queried(1)
        LabelQueue.for_run(store, load_shipped("mnist_test").classes, config).enqueue(store.tasks())
    return config_path, store_path


def test_serve_rejects_remote_host(run_folder, capsys) -> None:
    config_path, _ = run_folder

    status = main(["label", "serve", str(config_path), "--host", "0.0.0.0"])

    assert status == 2
    error = capsys.readouterr().err
    assert "host '0.0.0.0' can be reached from other machines" in error
    assert "--allow-remote" in error


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.4.5.6", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("labeling.example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_rejects_oracle_run(tmp_path: Path, capsys) -> None:
    config_path = write_human_config(tmp_path, labels={"source": "oracle"})

    status = main(["label", "serve", str(config_path)])

    assert status == 2
    assert "labels.source is 'oracle'" in capsys.readouterr().err


def test_serve_reports_port_in_use(run_folder, capsys) -> None:
    config_path, _ = run_folder
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        status = main(["label", "serve", str(config_path), "--port", str(port)])

    assert status == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_commands_need_existing_store(tmp_path: Path, capsys) -> None:
    config_path = write_human_config(tmp_path)

    status = main(["label", "annotators", "list", str(config_path)])

    assert status == 2
    error = capsys.readouterr().err
    assert "no label store at" in error
    assert "al-ray run" in error
    assert not (tmp_path / "run" / "labels.db").exists()


def test_annotators_add_prints_token_once(run_folder, capsys) -> None:
    config_path, store_path = run_folder

    status = main(["label", "annotators", "add", "alice", "--admin", str(config_path)])

    assert status == 0
    output = capsys.readouterr().out
    token = re.search(r"^token: (\S+)$", output, re.MULTILINE).group(1)
    with LabelStore(store_path) as store:
        queue = LabelQueue(store, ["0"], load_config(config_path).labeling)
        annotator = queue.authenticate(token)
    assert (annotator.annotator_id, annotator.role) == ("alice", "admin")


def test_annotators_add_duplicate_rejected(run_folder, capsys) -> None:
    config_path, _ = run_folder
    main(["label", "annotators", "add", "alice", str(config_path)])

    status = main(["label", "annotators", "add", "alice", str(config_path)])

    assert status == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name", ["consensus:majority", "labelstudio:9", "oracle", "Consensus:mine", "LabelStudio:alice"]
)
def test_annotators_add_rejects_reserved_ids(run_folder, capsys, name: str) -> None:
    config_path, store_path = run_folder

    status = main(["label", "annotators", "add", name, str(config_path)])

    assert status == 2
    error = capsys.readouterr().err
    assert f"Annotator id {name!r} is reserved" in error
    assert "'consensus:...', 'labelstudio:...', 'oracle'" in error
    with LabelStore(store_path) as store:
        assert LabelQueue(store, ["0"], load_config(config_path).labeling).annotators() == []


@pytest.mark.parametrize("name", ["", "_alice", "al ice", "a" * 65, "alice/bob", "émile"])
def test_annotators_add_rejects_malformed_ids(run_folder, capsys, name: str) -> None:
    config_path, _ = run_folder

    status = main(["label", "annotators", "add", name, str(config_path)])

    assert status == 2
    assert "1 to 64 letters, digits and '_.@:-', starting with a letter or digit" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["alice", "a" * 64, "alice.b@example.org", "team:alice", "consensus"])
def test_annotators_add_accepts_ids(run_folder, capsys, name: str) -> None:
    config_path, _ = run_folder

    assert main(["label", "annotators", "add", name, str(config_path)]) == 0
    assert f"added annotator {name}" in capsys.readouterr().out


def _token(output: str) -> str:
    return re.search(r"token(?: for \S+)?: (\S+)$", output, re.MULTILINE).group(1)


def test_annotators_deactivate_then_activate(run_folder, capsys) -> None:
    config_path, store_path = run_folder
    main(["label", "annotators", "add", "alice", str(config_path)])
    token = _token(capsys.readouterr().out)

    assert main(["label", "annotators", "deactivate", "alice", str(config_path)]) == 0
    deactivated = capsys.readouterr().out
    with LabelStore(store_path) as store:
        queue = LabelQueue(store, ["0"], load_config(config_path).labeling)
        with pytest.raises(AuthenticationError, match="deactivated"):
            queue.authenticate(token)
    assert main(["label", "annotators", "activate", "alice", str(config_path)]) == 0
    activated = capsys.readouterr().out
    with LabelStore(store_path) as store:
        queue = LabelQueue(store, ["0"], load_config(config_path).labeling)
        assert queue.authenticate(token).annotator_id == "alice"

    assert deactivated.startswith("deactivated alice: their token is rejected from now on")
    assert f"al-ray label annotators activate alice {config_path}" in deactivated
    assert activated.startswith("activated alice")


def test_annotators_reset_token(run_folder, capsys) -> None:
    config_path, store_path = run_folder
    main(["label", "annotators", "add", "alice", "--admin", str(config_path)])
    old = _token(capsys.readouterr().out)

    status = main(["label", "annotators", "reset-token", "alice", str(config_path)])

    assert status == 0
    output = capsys.readouterr().out
    new = _token(output)
    assert new != old
    assert output.count(new) == 1
    assert "The old token stops working now" in output
    with LabelStore(store_path) as store:
        queue = LabelQueue(store, ["0"], load_config(config_path).labeling)
        assert queue.authenticate(new) == Annotator("alice", "admin")
        with pytest.raises(AuthenticationError):
            queue.authenticate(old)


@pytest.mark.parametrize("action", ["deactivate", "activate", "reset-token"])
def test_annotators_change_unknown_name(run_folder, capsys, action: str) -> None:
    config_path, _ = run_folder

    status = main(["label", "annotators", action, "nobody", str(config_path)])

    assert status == 2
    error = capsys.readouterr().err
    assert "Annotator 'nobody' does not exist" in error
    assert "al-ray label annotators add nobody CONFIG" in error
    assert "()" not in error


def test_annotators_add_duplicate_names_reset_command(run_folder, capsys) -> None:
    config_path, _ = run_folder
    main(["label", "annotators", "add", "alice", str(config_path)])

    main(["label", "annotators", "add", "alice", str(config_path)])

    error = capsys.readouterr().err
    assert "al-ray label annotators reset-token alice CONFIG" in error
    assert "reset_token()" not in error


def test_annotators_list(run_folder, capsys) -> None:
    config_path, _ = run_folder
    main(["label", "annotators", "add", "bob", str(config_path)])
    main(["label", "annotators", "add", "alice", "--admin", str(config_path)])
    capsys.readouterr()

    status = main(["label", "annotators", "list", str(config_path)])

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["annotator_id", "role", "active", "created_at"]
    assert [line.split()[:3] for line in lines[1:]] == [["alice", "admin", "True"], ["bob", "annotator", "True"]]


def test_label_studio_export_then_import(run_folder, tmp_path: Path, capsys) -> None:
    config_path, store_path = run_folder
    export_path = tmp_path / "tasks.json"

    assert main(["label", "export", str(config_path), str(export_path)]) == 0
    tasks = json.loads(export_path.read_text(encoding="utf-8"))
    assert [task["data"]["row_id"] for task in tasks] == [0, 1, 2, 3]
    assert tasks[0]["data"]["image"].startswith("data:image/png;base64,")

    # What Label Studio exports once user 7 labeled the first two tasks.
    for task, digit in zip(tasks[:2], ["7", "2"]):
        task["annotations"] = [
            {
                "completed_by": 7,
                "result": [{"type": "choices", "from_name": "label", "to_name": "image", "value": {"choices": [digit]}}],
            }
        ]
    finished = tmp_path / "export.json"
    finished.write_text(json.dumps(tasks[:2]), encoding="utf-8")

    assert main(["label", "import", str(config_path), str(finished)]) == 0
    assert "stored 2 new ones" in capsys.readouterr().out
    engine = sa.create_engine(f"sqlite:///{store_path}")
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(annotations_table.c.row_id, annotations_table.c.annotator_id, annotations_table.c.label)
            .order_by(annotations_table.c.row_id)
        ).all()
    engine.dispose()
    assert [tuple(row) for row in stored] == [(0, "labelstudio:7", "7"), (1, "labelstudio:7", "2")]


# A whole run: `al-ray run` waits for people, who label through `al-ray label serve`.


def _start(command: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    with open(log, "w", encoding="utf-8") as stream:
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stream, text=True, env={**os.environ}, cwd=cwd
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _wait_for_tasks(store_path: Path, deadline: float) -> None:
    """Wait until the run has created its store and enqueued its first tasks."""
    while time.monotonic() < deadline:
        if store_path.exists():
            engine = sa.create_engine(f"sqlite:///{store_path}")
            try:
                with engine.connect() as connection:
                    if connection.execute(sa.select(sa.func.count()).select_from(queue_items_table)).scalar_one():
                        return
            except sa.exc.OperationalError:
                pass  # the queue's tables are not created yet
            finally:
                engine.dispose()
        time.sleep(0.2)
    raise AssertionError(f"the run enqueued no task in {store_path} in time")


@pytest.mark.slow
def test_people_label_two_rounds(tmp_path: Path, capsys) -> None:
    config_path = write_human_config(
        tmp_path,
        data={"initial_labeled": 10},
        model={"estimator": "logistic_regression", "params": {"max_iter": 100}, "fit_on": "driver"},
        loop={"rounds": 1, "batch_size": 3, "collect_timeout_s": 120},
        scoring={"mode": "local"},
    )
    store_path = tmp_path / "run" / "labels.db"
    digits = load_shipped("mnist_test")
    deadline = time.monotonic() + 120
    run = _start([sys.executable, "-m", "al_ray.cli", "run", str(config_path)], tmp_path / "run.log")
    server = None
    try:
        _wait_for_tasks(store_path, deadline)
        assert main(["label", "annotators", "add", "alice", str(config_path)]) == 0
        token = re.search(r"^token: (\S+)$", capsys.readouterr().out, re.MULTILINE).group(1)
        # --output relative to the working folder, as a user types it.
        server = _start(
            [sys.executable, "-m", "al_ray.cli", "label", "serve", str(config_path), "--port", "0", "--output", "run"],
            tmp_path / "serve.log",
            cwd=tmp_path,
        )
        printed = [server.stdout.readline().rstrip("\n") for _ in range(3)]
        url = re.search(r"labeling page: (\S+)/$", printed[0]).group(1)
        assert printed[1] == f"label store: {store_path.resolve()}"
        assert printed[2].startswith(f"add annotators with `al-ray label annotators add NAME {config_path} --output run`")
        assert httpx.get(url + "/favicon.ico", timeout=30).status_code == 200
        engine = sa.create_engine(f"sqlite:///{store_path}")
        answered = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            # Round 0's 10 rows, then round 1's 3; the run posts round 1 once round 0 has trained.
            while run.poll() is None and time.monotonic() < deadline:
                task = client.get("/api/next").json()["task"]
                if task is None:
                    time.sleep(0.2)
                    continue
                with engine.connect() as connection:
                    row_id = connection.execute(
                        sa.select(queue_items_table.c.row_id).where(queue_items_table.c.item_id == task["item_id"])
                    ).scalar_one()
                body = {"item_id": task["item_id"], "label": digits.label_names([row_id])[0], "submission_id": f"s{answered}"}
                assert client.post("/api/answers", json=body).status_code == 201
                answered += 1
        engine.dispose()
        assert run.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, (tmp_path / "run.log").read_text()
    finally:
        _stop(run)
        if server is not None:
            _stop(server)

    # Terminal 1 says once per round what it waits for and where people answer.
    log = (tmp_path / "run.log").read_text()
    assert log.count("round 0: waiting for 10 answers from human (up to") == 1, log
    assert log.count("round 1: waiting for") <= 1, log
    assert "people answer on the labeling page (`al-ray label serve CONFIG`" in log

    assert answered == 13
    with LabelStore(store_path) as store:
        assert [row["status"] for row in store.round_records()] == ["completed", "completed"]
        labels = store.labels()
        assert len(labels) == 13
        assert all(label == digits.label_names([row_id])[0] for row_id, label in labels.items())
        assert {answer.annotator for answer in store.answers()} == {"consensus:majority"}
