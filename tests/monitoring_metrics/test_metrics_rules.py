"""Alert rules and the Grafana dashboard: promtool checks and unit tests, and only metric names al_ray exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from al_ray.monitoring.metrics import all_metric_names, series_names
from al_ray.serving.metrics import RouterMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s" / "monitoring" / "alert-rules.yaml"
DASHBOARD = ROOT / "k8s" / "monitoring" / "grafana-dashboard.json"
RULE_TESTS = Path(__file__).resolve().parent / "alert_rules_test.yaml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# Names in a PromQL expression that look like al_ray series.
_SERIES = re.compile(r"\bal_ray_[a-zA-Z0-9_:]+")

needs_promtool = pytest.mark.skipif(
    not Path(PROMTOOL).exists(), reason="promtool is not installed (Debian package prometheus)"
)


def exported_names() -> set[str]:
    return all_metric_names("al_ray") | series_names(RouterMetrics().registry)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


@needs_promtool
def test_rules_pass_promtool_check():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


@needs_promtool
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("al_ray_drift_score > 0.25 and", "al_ray_drift_score > > 0.25 and"), "could not parse expression"),
        (("for: 10m", "for: ten minutes"), "not a valid duration string"),
    ],
)
def test_broken_rules_fail_promtool_check(tmp_path, change, expected):
    text = RULES.read_text()
    assert change[0] in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(change[0], change[1], 1))
    result = promtool("check", "rules", str(broken))
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


@needs_promtool
def test_alert_unit_tests_pass():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"]}
    assert {"AlRayDriftHigh", "AlRayModelStale", "AlRayLabelQueueStalled", "AlRayCanaryRollback"} <= tested


@needs_promtool
def test_alert_unit_test_can_fail(tmp_path):
    # The same tests against rules whose drift threshold is too high: the drift case must fail.
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text().replace("al_ray_drift_score > 0.25", "al_ray_drift_score > 0.5"))
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(rules)]
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", str(path))
    assert result.returncode != 0
    assert "alertname: AlRayDriftHigh" in result.stdout + result.stderr


def test_rules_query_exported_series():
    names = exported_names()
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    for rule in rules:
        used = set(_SERIES.findall(rule["expr"]))
        assert used, f"{rule['alert']} queries no al_ray series"
        assert used <= names, f"{rule['alert']} queries series al_ray does not export: {sorted(used - names)}"


def test_dashboard_panels_query_exported_series():
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported_names()
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 10
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = set(_SERIES.findall(target["expr"]))
            assert used, f"panel {panel['title']!r} queries no al_ray series: {target['expr']}"
            assert used <= names, f"panel {panel['title']!r} queries unknown series {sorted(used - names)}"
    queried = {name for panel in panels for target in panel["targets"] for name in _SERIES.findall(target["expr"])}
    # Every metric the issue names has a panel.
    for name in ("al_ray_rounds_total", "al_ray_round_stage_seconds_bucket", "al_ray_round_labels",
                 "al_ray_labeling_cost_total", "al_ray_round_accuracy_gain", "al_ray_drift_score",
                 "al_ray_outlier_share", "al_ray_model_version_timestamp_seconds", "al_ray_canary_rollbacks_total"):
        assert name in queried
