"""A real Prometheus server on 127.0.0.1 scrapes al_ray's endpoint and loads the shipped alert rules."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from al_ray.monitoring.exporter import MetricsExporter
from al_ray.monitoring.metrics import AlRayMetrics, LoopMetrics, WatchMetrics

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
RULES = Path(__file__).resolve().parents[2] / "k8s" / "monitoring" / "alert-rules.yaml"
WAIT_S = 30.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="prometheus is not installed (Debian package prometheus)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(check, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what} not seen within {WAIT_S:.0f} s; prometheus log:\n{log.read_text()[-3000:]}")


def test_prometheus_scrapes_al_ray(tmp_path):
    metrics = AlRayMetrics()
    loop = LoopMetrics(metrics, cost_per_label=0.5)
    loop.round_finished(0, n_labeled=20, n_new_labels=20, accuracy=0.7)
    loop.round_finished(1, n_labeled=40, n_new_labels=20, accuracy=0.76, previous_accuracy=0.7)
    loop.labels_stored(["alice"] * 3)
    loop.stage_seconds("training", 1.5)
    WatchMetrics(metrics).drift_checked(score=0.31, feature_share=0.25, drifted=True)
    exporter = MetricsExporter(metrics.registry, host="127.0.0.1", port=0)

    port = free_port()
    shutil.copy(RULES, tmp_path / "alert-rules.yaml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alert-rules.yaml"],
        "scrape_configs": [
            {"job_name": "al_ray", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp_path / "prometheus.log"
    base = f"http://127.0.0.1:{port}"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:

        def rounds():
            result = api(base, "/api/v1/query", query="al_ray_rounds_total")["data"]["result"]
            return result[0] if result else None

        sample = wait_for(rounds, "al_ray_rounds_total", process, log)
        assert sample["metric"]["job"] == "al_ray"
        assert sample["metric"]["instance"] == f"127.0.0.1:{exporter.port}"
        assert float(sample["value"][1]) == 2

        def query_value(expression: str) -> float:
            (result,) = api(base, "/api/v1/query", query=expression)["data"]["result"]
            return float(result["value"][1])

        assert query_value("al_ray_round_accuracy_gain") == pytest.approx(0.06)
        assert query_value('al_ray_labeling_cost_total{annotator="alice"}') == 1.5
        assert query_value('al_ray_round_stage_seconds_sum{stage="training"}') == 1.5
        assert query_value("al_ray_drift_score") == 0.31
        assert query_value('up{job="al_ray"}') == 1

        # A value recorded now reaches Prometheus on a later scrape.
        loop.round_finished(2, n_labeled=60, n_new_labels=20, accuracy=0.8, previous_accuracy=0.76)
        wait_for(lambda: query_value("al_ray_rounds_total") == 3, "the third round", process, log)

        def rule_health():
            groups = api(base, "/api/v1/rules")["data"]["groups"]
            health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
            # A rule's health is "unknown" until its first evaluation.
            return health if "unknown" not in health.values() else None

        health = wait_for(rule_health, "the alert rules evaluated", process, log)
        assert len(health) == 6
        assert set(health.values()) == {"ok"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        exporter.close()
