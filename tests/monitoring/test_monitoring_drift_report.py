"""The HTML drift report: embedded PNG plots, the p-value table, atomic writes, MLflow artifacts."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from al_ray.errors import TrackingError
from al_ray.monitoring.config import DriftConfig
from al_ray.monitoring.drift import DriftDetector
from al_ray.monitoring.drift_report import (
    log_report_to_mlflow,
    render_report,
    write_report,
)

NAMES = ("price", "demand", "day", "const")


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(0)
    reference = np.column_stack(
        [rng.normal(size=400), rng.normal(size=400), rng.integers(1, 8, size=400), np.full(400, 0.5)]
    )
    window = np.column_stack(
        [rng.normal(1.0, 1.0, size=200), rng.normal(size=200), rng.integers(1, 8, size=200), rng.uniform(size=200)]
    )
    detector = DriftDetector(
        reference,
        NAMES,
        DriftConfig(),
        reference_predictions=rng.integers(0, 2, size=400),
        reference_uncertainty=rng.uniform(0, 0.5, size=400),
    )
    return detector.check(
        window, predictions=rng.integers(0, 2, size=200), uncertainty=rng.uniform(0, 0.8, size=200), label="rows 0-199"
    )


@pytest.fixture(scope="module")
def page(result):
    return render_report(result, title="elec2 <replay>")


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_report_html_content(result, page):
    text = page

    assert text.startswith("<!DOCTYPE html>")
    assert "<h1>elec2 &lt;replay&gt;: rows 0-199</h1>" in text
    assert "<b>DRIFTED</b>" in text
    images = _images(text)
    assert len(images) == 2
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    # One table row per feature, the drifted ones marked, the constant one named.
    assert text.count("<tr class=\"drifted\">") == len(result.drifted_features)
    assert "const (constant in reference)" in text
    assert "Prediction drift" in text
    assert "Uncertainty" in text


def test_report_lists_most_drifted_first(result, page):
    text = page
    start = text.index("<h2>Feature tests</h2>")
    table = text[start:text.index("</table>", start)]
    order = [name for name in re.findall(r"<tr(?: class=\"drifted\")?><td>(\w+)", table)]

    assert order[: len(result.drifted_features)] == [feature.name for feature in result.ranked_features()][: len(result.drifted_features)]
    assert set(order) == set(NAMES)


def test_write_report_atomic(result, tmp_path):
    target = tmp_path / "reports" / "check.html"

    written = write_report(result, target)
    write_report(result, target)

    assert written == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(path.name for path in target.parent.iterdir()) == ["check.html"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_report_failure_keeps_old_file(result, tmp_path, monkeypatch):
    target = tmp_path / "check.html"
    target.write_text("old", encoding="utf-8")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("al_ray.monitoring.drift_report.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(result, target)

    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["check.html"]


@pytest.fixture
def mlflow_store(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("drift", artifact_location=(tmp_path / "artifacts").as_uri())
    yield uri, client, experiment
    mlflow.set_tracking_uri(previous)


@pytest.mark.slow
def test_log_report_to_active_run_and_by_id(result, tmp_path, mlflow_store):
    import mlflow

    uri, client, experiment = mlflow_store
    path = write_report(result, tmp_path / "check_0001.html")

    with mlflow.start_run(experiment_id=experiment) as run:
        logged = log_report_to_mlflow(path)
    other = client.create_run(experiment).info.run_id
    by_id = log_report_to_mlflow(path, run_id=other, tracking_uri=uri, artifact_path="drift")

    assert logged == "drift_reports/check_0001.html"
    assert [item.path for item in client.list_artifacts(run.info.run_id, "drift_reports")] == [logged]
    assert [item.path for item in client.list_artifacts(other, "drift")] == [by_id]


def test_log_report_without_run(result, tmp_path):
    import mlflow

    path = write_report(result, tmp_path / "check.html")
    assert mlflow.active_run() is None

    with pytest.raises(TrackingError, match="no active MLflow run to log the drift report to"):
        log_report_to_mlflow(path)
    with pytest.raises(TrackingError, match="does not exist; write it with write_report first"):
        log_report_to_mlflow(tmp_path / "missing.html", run_id="0")


def test_report_names_both_share_thresholds(result):
    from al_ray.monitoring.triggers import Decision

    decision = Decision("drift", False, {"drifted_share": 0.25, "min_drifted_share": 0.5}, "drifted share 0.25 < 0.5")

    text = render_report(result, decisions=[decision])

    assert "at least 0, monitoring.drift.min_drifted_share" in text
    assert "<h2>Trigger policies</h2>" in text
    assert "<li><b>drift</b>: did not fire (drifted share 0.25 &lt; 0.5)</li>" in text


def test_constant_features_listed_without_warning():
    import logging

    reference = np.column_stack([np.arange(10.0), np.full(10, 0.5), np.full(10, 2.0)])
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # the CLI may have stopped propagation to the root logger
    logger = logging.getLogger("al_ray.monitoring.drift")
    logger.addHandler(handler)
    try:
        quiet = DriftDetector(reference, ("a", "b", "c"), DriftConfig(exclude_features=["c"]), warn_constant=False)
        quiet_records = len(records)
        DriftDetector(reference, ("a", "b", "c"), DriftConfig(exclude_features=["c"]))
    finally:
        logger.removeHandler(handler)

    assert quiet.constant_features == {"b": 0.5}
    assert quiet_records == 0
    assert ["constant" in record.getMessage() for record in records] == [True]
