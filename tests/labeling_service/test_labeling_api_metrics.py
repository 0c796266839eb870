"""GET /metrics of the labeling service: stored answers, their cost and the queue, for Prometheus without a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labeling_service_support import LabelingRun, open_labeling_run
from prometheus_client.parser import text_string_to_metric_families

from al_ray.data import LabeledData
from al_ray.monitoring.metrics import AlRayMetrics


@pytest.fixture
def metered_run(tmp_path: Path, mnist: LabeledData) -> Iterator[LabelingRun]:
    """A run on SQLite whose app counts into its own registry, at 0.05 per answer."""
    yield from open_labeling_run(
        f"sqlite:///{tmp_path / 'labels.db'}", mnist, metrics=AlRayMetrics(), cost_per_label=0.05
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of the Prometheus text as ``(name, sorted labels) -> value``."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _answer(run: LabelingRun, annotator: str, submission_id: str) -> dict:
    task = run.next_item(annotator)
    body = {"item_id": task["item_id"], "label": "7", "submission_id": submission_id}
    response = run.client.post("/api/answers", json=body, headers=run.auth(annotator))
    assert response.status_code == 201, response.text
    return body


def test_metrics_count_stored_answers(metered_run: LabelingRun) -> None:
    first = _answer(metered_run, "alice", "s1")
    _answer(metered_run, "bob", "s2")
    replay = metered_run.client.post("/api/answers", json=first, headers=metered_run.auth("alice"))
    assert replay.status_code == 200
    assert replay.json()["stored"] is False
    metered_run.next_item("alice")  # alice now holds a third task

    response = metered_run.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(response.text)
    assert samples[("al_ray_labels_total", (("annotator", "alice"),))] == 1.0
    assert samples[("al_ray_labels_total", (("annotator", "bob"),))] == 1.0
    assert sum(value for (name, _), value in samples.items() if name == "al_ray_labels_total") == 2.0
    assert samples[("al_ray_labeling_cost_total", (("annotator", "alice"),))] == pytest.approx(0.05)
    assert samples[("al_ray_labeling_cost_total", (("annotator", "bob"),))] == pytest.approx(0.05)
    # Six tasks, one answer each: two answered, the one alice holds still needs its answer.
    assert samples[("al_ray_label_tasks_pending", ())] == 4.0
    assert samples[("al_ray_label_tasks_leased", ())] == 1.0


def test_metrics_show_counts_only(metered_run: LabelingRun) -> None:
    _answer(metered_run, "alice", "s1")

    response = metered_run.client.get("/metrics")

    assert response.status_code == 200
    for token in metered_run.tokens.values():
        assert token not in response.text
    samples = _samples(response.text)
    label_names = {name for _, labels in samples for name, _ in labels}
    assert label_names == {"annotator"}
    annotators = {value for _, labels in samples for _, value in labels}
    assert annotators == {"alice"}
    assert not any(name.startswith("al_ray_round") for name, _ in samples)


def test_metrics_without_cost(tmp_path: Path, mnist: LabeledData) -> None:
    for run in open_labeling_run(f"sqlite:///{tmp_path / 'labels.db'}", mnist, metrics=AlRayMetrics()):
        _answer(run, "alice", "s1")

        samples = _samples(run.client.get("/metrics").text)

        assert samples[("al_ray_labels_total", (("annotator", "alice"),))] == 1.0
        assert not any(name == "al_ray_labeling_cost_total" for name, _ in samples)


def test_no_metrics_endpoint_by_default(sqlite_run: LabelingRun) -> None:
    response = sqlite_run.client.get("/metrics")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
