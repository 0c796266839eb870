"""``al-ray serve deploy`` on a real run: a good challenger is promoted, a bad one rolled back."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import yaml

from al_ray.cli import main
from al_ray.data import load_shipped
from al_ray.labels import LabelStore
from al_ray.loop.model_io import save_model
from al_ray.models import SklearnClassifier, build_estimator
from al_ray.tracking.registry import ModelRegistry

pytestmark = pytest.mark.timeout(300)

NAME = "letter_small-margin"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def run(ray_local, tmp_path_factory):
    """A two-round run on letter with tracking: registered versions 1, 2 and 3."""
    folder = tmp_path_factory.mktemp("serve_cli")
    port = _free_port()
    config = {
        "name": "letter_small",
        "seed": 1,
        "data": {"dataset": "letter_recognition", "initial_labeled": 200, "test_size": 2000, "pool_size": 4000},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 300}, "standardize": True, "fit_on": "driver"},
        "strategy": {"name": "margin"},
        "loop": {"rounds": 2, "batch_size": 100},
        "scoring": {"mode": "local"},
        "serving": {
            "port": port,
            "rollout": {"steps": [0.5, 1.0], "hold_s": 1.0, "min_requests": 10},
            "guards": {"max_error_rate": 0.05, "max_p95_latency_ratio": 10.0, "min_agreement": 0.6},
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    output = folder / "out"
    assert main(["run", str(path), "--output", str(output)]) == 0
    return path, output, port


class _Traffic:
    """Send letter rows to the router from a thread until stopped, as users would."""

    def __init__(self, port: int) -> None:
        data = load_shipped("letter_recognition")
        self.rows = data.features[-200:].tolist()
        self.url = f"http://127.0.0.1:{port}/predict"
        self.stop = threading.Event()
        self.answered: list[str] = []
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        index = 0
        while not self.stop.is_set():
            body = json.dumps({"rows": self.rows[index % 190 : index % 190 + 8]}).encode()
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.answered.append(json.loads(response.read())["version"])
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                self.stop.wait(0.2)  # not deployed yet, or shutting down
            index += 8

    def __enter__(self) -> "_Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _decisions(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_good_challenger_promoted(run, tmp_path, capsys):
    config, output, port = run
    log = tmp_path / "rollout.jsonl"
    argv = ["serve", "deploy", str(config), "--output", str(output), "--champion", "2", "--challenger", "3",
            "--decision-log", str(log), "--exit-after-rollout", "--max-duration", "120"]

    with _Traffic(port) as traffic:
        assert main(argv) == 0

    actions = [decision["action"] for decision in _decisions(log)]
    assert actions[0] == "start"
    assert actions[-1] == "promote"
    assert "advance" in actions
    assert {"2", "3"} <= set(traffic.answered)
    registry = ModelRegistry(f"sqlite:///{output / 'mlflow.db'}")
    assert registry.describe(NAME, "champion").version == 3
    assert "promoted version 3 to champion" in capsys.readouterr().out


def test_bad_challenger_rolled_back(run, tmp_path):
    config, output, port = run
    registry = ModelRegistry(f"sqlite:///{output / 'mlflow.db'}")
    # A deliberately bad model: trained on shuffled labels, it agrees with the
    # champion on about 1 row in 26.
    data = load_shipped("letter_recognition")
    shuffled = np.random.default_rng(0).permutation(data.labels[:2000])
    estimator = build_estimator("logistic_regression", {"max_iter": 300}, standardize=True, seed=0)
    bad = SklearnClassifier(estimator, data.classes).fit(data.features[:2000], shuffled)
    save_model(bad, tmp_path / "bad.pkl")
    with LabelStore(output / "labels.db") as store:
        run_id = store.get_meta("mlflow_run_id")
    lineage = {"n_labeled": "2000", "labeled_hash": "-", "strategy": "shuffled labels", "seed": "0", "parent_version": "3"}
    bad_version = registry.register_round(
        run_id, tmp_path / "bad.pkl", name=NAME, round_index=99, lineage=lineage, metrics={}, classes=list(data.classes)
    )
    champion_before = registry.describe(NAME, "champion").version
    log = tmp_path / "rollout.jsonl"
    argv = ["serve", "deploy", str(config), "--output", str(output), "--champion", "champion",
            "--challenger", bad_version, "--decision-log", str(log), "--exit-after-rollout", "--max-duration", "120"]

    with _Traffic(port):
        assert main(argv) == 3

    final = _decisions(log)[-1]
    assert final["action"] == "rollback"
    assert final["cause"] == "guard_breach"
    assert "agreement" in final["reason"]
    assert registry.describe(NAME, "champion").version == champion_before


def test_loop_deploys_each_round(ray_local, tmp_path):
    port = _free_port()
    config = {
        "name": "letter_rollout",
        "seed": 2,
        "data": {"dataset": "letter_recognition", "initial_labeled": 300, "test_size": 2000, "pool_size": 3000},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 300}, "standardize": True, "fit_on": "driver"},
        "strategy": {"name": "margin"},
        "loop": {"rounds": 1, "batch_size": 200},
        "scoring": {"mode": "local"},
        "serving": {
            "port": port,
            "deploy_each_round": True,
            "rollout": {"steps": [0.5, 1.0], "hold_s": 1.0, "min_requests": 10, "max_duration_s": 120},
            "guards": {"max_error_rate": 0.05, "max_p95_latency_ratio": 10.0, "min_agreement": 0.6},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    output = tmp_path / "out"

    with _Traffic(port) as traffic:
        assert main(["run", str(path), "--output", str(output)]) == 0

    decisions = _decisions(output / "rollout.jsonl")
    assert decisions[0]["action"] == "start"
    assert decisions[-1]["action"] in ("promote", "rollback")
    assert {"1", "2"} <= set(traffic.answered)
    with LabelStore(output / "labels.db") as store:
        metrics = {row["round_index"]: row["metrics"] for row in store.round_records()}
    promoted = decisions[-1]["action"] == "promote"
    assert metrics[1]["rollout_promoted"] == (1.0 if promoted else 0.0)
    registry = ModelRegistry(f"sqlite:///{output / 'mlflow.db'}")
    assert registry.describe("letter_rollout-margin", "champion").version == (2 if promoted else 1)
