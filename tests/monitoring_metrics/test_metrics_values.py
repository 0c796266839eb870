"""Metric values after a small fake round, the watcher's figures and the labeling service's, by hand."""

from __future__ import annotations

import math
import time

import pytest

from al_ray.labels import Answer, LabelStore
from al_ray.monitoring.loop_monitor import LoopMonitor
from al_ray.monitoring.metrics import (
    AlRayMetrics,
    LabelingMetrics,
    LoopMetrics,
    WatchMetrics,
    process_metrics,
)


def value(metrics: AlRayMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_fake_rounds_through_loop_monitor(tmp_path):
    metrics = AlRayMetrics()
    monitor = LoopMonitor(metrics, cost_per_label={"alice": 0.5, "*": 0.1})
    with LabelStore(tmp_path / "labels.db") as store:
        # Round 0: 3 rows, all answered by alice.
        store.begin_round(0)
        store.post_tasks(0, [1, 2, 3])
        store.mark_round_queried(0)
        monitor.pending_tasks(3)
        answers = [Answer(row, "a", "alice", 1.0) for row in (1, 2, 3)]
        monitor.answers_stored(answers, store.add_answers(answers), tasks=store.tasks())
        store.complete_round(0, {"n_labeled": 3.0, "accuracy": 0.5, "train_seconds": 0.2, "scoring_rows": 0.0})
        monitor.round_completed(0, store.round_records())

        # Round 1: 2 rows, one by bob; one answer repeated from round 0 counts nowhere.
        store.begin_round(1)
        store.post_tasks(1, [4, 5])
        store.mark_round_queried(1)
        answers = [Answer(4, "b", "bob", 2.0), Answer(5, "a", "alice", 2.0)]
        monitor.answers_stored(answers, store.add_answers(answers), tasks=store.tasks())
        repeat = [Answer(1, "a", "alice", 1.0)]
        monitor.answers_stored(repeat, store.add_answers(repeat))
        monitor.pending_tasks(0)
        with monitor.stage("deployment"):
            pass
        store.complete_round(
            1,
            {"n_labeled": 5.0, "accuracy": 0.62, "train_seconds": 0.4, "scoring_seconds": 0.3, "scoring_rows": 100.0},
        )
        before = time.time()
        monitor.round_completed(1, store.round_records())
    monitor.close()

    assert value(metrics, "al_ray_rounds_total") == 2
    assert value(metrics, "al_ray_round_index") == 1
    assert value(metrics, "al_ray_round_labels") == 2
    assert value(metrics, "al_ray_labeled_rows") == 5
    assert value(metrics, "al_ray_round_accuracy") == 0.62
    assert value(metrics, "al_ray_round_accuracy_gain") == pytest.approx(0.12)
    assert value(metrics, "al_ray_labels_total", annotator="alice") == 4
    assert value(metrics, "al_ray_labels_total", annotator="bob") == 1
    assert value(metrics, "al_ray_labeling_cost_total", annotator="alice") == pytest.approx(2.0)
    assert value(metrics, "al_ray_labeling_cost_total", annotator="bob") == pytest.approx(0.1)
    assert value(metrics, "al_ray_label_tasks_pending") == 0
    assert value(metrics, "al_ray_round_stage_seconds_count", stage="training") == 2
    assert value(metrics, "al_ray_round_stage_seconds_sum", stage="training") == pytest.approx(0.6)
    # Round 0 scored nothing, so only round 1's scoring counts.
    assert value(metrics, "al_ray_round_stage_seconds_count", stage="scoring") == 1
    assert value(metrics, "al_ray_round_stage_seconds_sum", stage="scoring") == pytest.approx(0.3)
    assert value(metrics, "al_ray_round_stage_seconds_count", stage="deployment") == 1
    # 0.3 s falls in the 0.5 s bucket, not in the 0.25 s one.
    assert value(metrics, "al_ray_round_stage_seconds_bucket", stage="scoring", le="0.25") == 0
    assert value(metrics, "al_ray_round_stage_seconds_bucket", stage="scoring", le="0.5") == 1
    assert before <= value(metrics, "al_ray_model_version_timestamp_seconds") <= time.time()
    assert 0 <= value(metrics, "al_ray_staleness_seconds") < 60
    # The loop registers no watcher series.
    assert value(metrics, "al_ray_drift_score") is None


def test_loop_metrics_outliers_and_rollouts():
    metrics = AlRayMetrics()
    loop = LoopMetrics(metrics)
    loop.outliers_held_back(5, 200)
    loop.outliers_held_back(3, 100)
    loop.rollout_finished(promoted=True)
    loop.rollout_finished(promoted=False)
    loop.rollout_finished(promoted=False)
    assert value(metrics, "al_ray_outliers_held_back_total") == 8
    assert value(metrics, "al_ray_outlier_share") == 0.03
    assert value(metrics, "al_ray_canary_promotions_total") == 1
    assert value(metrics, "al_ray_canary_rollbacks_total") == 2
    # No cost configured: answers are counted, cost is not.
    loop.labels_stored(["oracle", "oracle"])
    assert value(metrics, "al_ray_labels_total", annotator="oracle") == 2
    assert value(metrics, "al_ray_labeling_cost_total", annotator="oracle") is None
    with pytest.raises(ValueError, match="stage must be one of"):
        loop.stage_seconds("waiting", 1.0)


def test_staleness_nan_before_first_version():
    metrics = AlRayMetrics()
    LoopMetrics(metrics)
    assert math.isnan(value(metrics, "al_ray_staleness_seconds"))
    watch = WatchMetrics(metrics)
    watch.model_version_seen(time.time() - 3600)
    assert 3600 <= value(metrics, "al_ray_staleness_seconds") < 3660


def test_watch_metrics_replace_feature_series():
    metrics = AlRayMetrics(namespace="watch_test")
    watch = WatchMetrics(metrics)
    watch.drift_checked(score=0.4, feature_share=0.5, drifted=True, feature_statistics={"nswprice": 0.3, "vicdemand": 0.1},
                        prediction_statistic=12.5, uncertainty_mean=0.22)
    watch.drift_checked(score=0.05, feature_share=0.0, drifted=False, feature_statistics={"nswprice": 0.02})
    watch.window_rejected("empty")
    watch.trigger_decision("drift", start=True)
    watch.trigger_decision("drift", start=False)
    watch.trigger_decision("drift", start=False)
    watch.round_started("drift")
    watch.round_failed("drift")
    assert value(metrics, "watch_test_drift_checks_total") == 2
    assert value(metrics, "watch_test_drift_score") == 0.05
    assert value(metrics, "watch_test_drift_detected") == 0
    assert value(metrics, "watch_test_drift_feature_statistic", feature="nswprice") == 0.02
    assert value(metrics, "watch_test_drift_feature_statistic", feature="vicdemand") is None
    assert value(metrics, "watch_test_prediction_drift_statistic") == 12.5
    assert value(metrics, "watch_test_live_uncertainty_mean") == 0.22
    assert value(metrics, "watch_test_drift_windows_rejected_total", reason="empty") == 1
    assert value(metrics, "watch_test_trigger_decisions_total", policy="drift", decision="start") == 1
    assert value(metrics, "watch_test_trigger_decisions_total", policy="drift", decision="skip") == 2
    assert value(metrics, "watch_test_watch_rounds_started_total", policy="drift") == 1
    assert value(metrics, "watch_test_watch_round_failures_total", policy="drift") == 1
    assert value(metrics, "watch_test_rounds_total") is None


def test_labeling_metrics_only_label_series():
    metrics = AlRayMetrics()
    labeling = LabelingMetrics(metrics, cost_per_label=0.08)
    labeling.labels_stored(["alice", "bob", "alice"])
    labeling.set_pending_tasks(7)
    labeling.set_leased_tasks(2)
    assert value(metrics, "al_ray_labeling_cost_total", annotator="alice") == pytest.approx(0.16)
    assert value(metrics, "al_ray_label_tasks_pending") == 7
    assert value(metrics, "al_ray_label_tasks_leased") == 2
    text = metrics.render().decode()
    assert "al_ray_rounds_total" not in text
    assert "al_ray_staleness_seconds" not in text


def test_process_metrics_shared_per_namespace():
    assert process_metrics("shared_test") is process_metrics("shared_test")
    assert process_metrics("shared_test") is not process_metrics("shared_test_other")


def test_policy_series_start_at_zero():
    metrics = AlRayMetrics(namespace="policies_test")
    watch = WatchMetrics(metrics)

    watch.policies_configured(["drift", "staleness"])

    for policy in ("drift", "staleness"):
        assert value(metrics, "policies_test_watch_round_failures_total", policy=policy) == 0
        assert value(metrics, "policies_test_watch_rounds_started_total", policy=policy) == 0
        assert value(metrics, "policies_test_trigger_decisions_total", policy=policy, decision="start") == 0
    assert value(metrics, "policies_test_watch_round_failures_total", policy="uncertainty") is None
    assert value(metrics, "policies_test_drift_windows_rejected_total", reason="malformed") == 0


def test_expected_annotator_series_start_at_zero():
    metrics = AlRayMetrics(namespace="annotators_test")
    loop = LoopMetrics(metrics, cost_per_label=0.5)

    loop.expect_annotators(["oracle"])

    assert value(metrics, "annotators_test_labels_total", annotator="oracle") == 0
    assert value(metrics, "annotators_test_labeling_cost_total", annotator="oracle") == 0
