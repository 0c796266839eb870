"""The metrics endpoint over real HTTP on 127.0.0.1, its sharing within a process, and textfiles."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from al_ray.config import parse_config
from al_ray.errors import ConfigError
from al_ray.monitoring.exporter import MetricsExporter, acquire_exporter, write_textfile
from al_ray.monitoring.loop_monitor import LoopMonitor
from al_ray.monitoring.metrics import AlRayMetrics, LoopMetrics


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_endpoint_serves_while_recording():
    metrics = AlRayMetrics()
    loop = LoopMetrics(metrics)
    exporter = MetricsExporter(metrics.registry, host="127.0.0.1", port=0)
    try:
        assert exporter.url == f"http://127.0.0.1:{exporter.port}/metrics"
        assert scrape(exporter.url)["al_ray_rounds_total"] == 0
        loop.round_finished(0, n_labeled=20, n_new_labels=20, accuracy=0.7)
        series = scrape(exporter.url)
        assert series["al_ray_rounds_total"] == 1
        assert series["al_ray_round_accuracy"] == 0.7
    finally:
        exporter.close()
        exporter.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(exporter.url, timeout=2)


def test_port_in_use_is_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            MetricsExporter(AlRayMetrics().registry, host="127.0.0.1", port=port)


def test_watcher_and_loop_share_one_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = AlRayMetrics()
    LoopMetrics(metrics)
    first = acquire_exporter(metrics, "127.0.0.1", port)
    second = acquire_exporter(metrics, "127.0.0.1", port)
    assert first.exporter is second.exporter
    first.release()
    # The endpoint outlives the first release.
    assert "al_ray_rounds_total" in scrape(second.exporter.url)
    second.release()
    second.release()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_textfile_written_atomically(tmp_path):
    metrics = AlRayMetrics()
    LoopMetrics(metrics).round_finished(3, n_labeled=80, n_new_labels=20, accuracy=0.81, previous_accuracy=0.8)
    path = write_textfile(metrics, tmp_path / "collector" / "al_ray.prom")
    assert sorted(item.name for item in path.parent.iterdir()) == ["al_ray.prom"]
    series = {
        sample.name: sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }
    assert series["al_ray_round_index"] == 3
    assert series["al_ray_round_accuracy_gain"] == pytest.approx(0.01)


def test_monitor_from_config_serves_and_stops(tmp_path):
    config = parse_config(
        {
            "name": "demo",
            "data": {"dataset": "mnist_test"},
            "monitoring": {"metrics": {"enabled": True, "port": 0, "namespace": "demo_ns",
                                       "textfile": str(tmp_path / "demo.prom")}},
        }
    )
    monitor = LoopMonitor.open(config, tmp_path / "run")
    try:
        assert monitor.audit is None
        url = monitor.exporter_url
        assert scrape(url)["demo_ns_rounds_total"] == 0
    finally:
        monitor.close()
    assert "demo_ns_rounds_total 0.0" in (tmp_path / "demo.prom").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"namespace": "al-ray"}, "valid Prometheus metric name prefix"),
        ({"textfile": "metrics.txt"}, "textfile must end in .prom"),
        ({"port": 70000}, "less than or equal to 65535"),
    ],
)
def test_metrics_config_rejects(metrics, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"name": "demo", "data": {"dataset": "mnist_test"}, "monitoring": {"metrics": metrics}})


def test_port_zero_shared_within_process():
    metrics = AlRayMetrics()
    first = acquire_exporter(metrics, "127.0.0.1", 0)
    second = acquire_exporter(metrics, "127.0.0.1", 0)
    other = acquire_exporter(AlRayMetrics(), "127.0.0.1", 0)
    try:
        assert first.exporter is second.exporter
        assert first.exporter.port != 0
        assert other.exporter is not first.exporter
    finally:
        for lease in (first, second, other):
            lease.release()
