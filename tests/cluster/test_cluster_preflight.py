"""What `al-ray submit` rejects before it contacts a cluster: a model that does not build, an output folder the job would reject.

192.0.2.10 is a documentation address (RFC 5737) that stands for a remote
head node and is never contacted; 127.0.0.1:8265 is not contacted either,
because every case here fails or returns before the dashboard probe.
"""

from __future__ import annotations

import pytest

from al_ray.cli import main
from al_ray.cluster.job_spec import CONFIG_ENV_VAR
from al_ray.cluster.previous_run import submitted_job_fix
from al_ray.cluster.submit import prepare_submission, submission_failure
from al_ray.errors import ModelError, ResumeError

LOCAL = "http://127.0.0.1:8265"
REMOTE = "http://192.0.2.10:8265"


def _existing_run(tmp_path):
    (tmp_path / "out").mkdir(exist_ok=True)
    store = tmp_path / "out" / "labels.db"
    store.touch()
    return store


def test_misspelled_estimator_rejected(cluster_config):
    path = cluster_config(model={"estimator": "logistic_regresion"})
    with pytest.raises(ModelError, match="unknown estimator 'logistic_regresion'"):
        prepare_submission(path, LOCAL)


def test_unknown_estimator_param_rejected(cluster_config):
    path = cluster_config(model={"estimator": "random_forest", "params": {"n_estimator": 10}})
    with pytest.raises(ModelError, match=r"takes no parameter\(s\) \['n_estimator'\]"):
        prepare_submission(path, REMOTE)


def test_cli_misspelled_estimator_exits_2(cluster_config, capsys):
    path = cluster_config(model={"estimator": "logistic_regresion"})
    assert main(["submit", str(path), "--address", LOCAL]) == 2
    err = capsys.readouterr().err
    assert "al-ray: error: unknown estimator 'logistic_regresion'" in err
    assert "Traceback" not in err


def test_image_estimator_missing_here_allowed(cluster_config):
    # The image brings the estimator's package; this machine does not have it.
    path = cluster_config(
        model={"estimator": "notinstalled_pkg.Classifier", "params": {}},
        cluster={"image_uri": "registry.example.com/al-ray:0.1.0"},
    )
    prepared = prepare_submission(path, LOCAL)
    assert "notinstalled_pkg.Classifier" in prepared.spec.config_text


def test_missing_estimator_without_image_rejected(cluster_config):
    path = cluster_config(model={"estimator": "notinstalled_pkg.Classifier", "params": {}})
    with pytest.raises(ModelError, match="cannot import estimator 'notinstalled_pkg.Classifier'"):
        prepare_submission(path, LOCAL)


def test_existing_run_needs_more_rounds(cluster_config, tmp_path):
    store = _existing_run(tmp_path)
    path = cluster_config()
    with pytest.raises(ResumeError) as caught:
        prepare_submission(path, LOCAL)
    message = str(caught.value)
    assert f"{store} already contains a run" in message
    assert "--more-rounds N" in message
    assert "--resume" in message
    assert f"set output in {path} to another location" in message
    assert "--output" not in message


def test_existing_run_with_store_key_named(cluster_config, tmp_path):
    store = tmp_path / "labels-elsewhere.db"
    store.touch()
    path = cluster_config(labels={"store": str(store)})
    with pytest.raises(ResumeError, match=f"set labels.store in {path} to another location"):
        prepare_submission(path, LOCAL)


@pytest.mark.parametrize("options", [{"more_rounds": 1}, {"resume": True}])
def test_existing_run_continued(cluster_config, tmp_path, options):
    _existing_run(tmp_path)
    spec = prepare_submission(cluster_config(), LOCAL, **options).spec
    assert ("--more-rounds 1" in spec.entrypoint) == ("more_rounds" in options)
    assert spec.entrypoint.endswith("--resume") == ("resume" in options)


def test_resume_without_run_rejected(cluster_config, tmp_path):
    with pytest.raises(ResumeError) as caught:
        prepare_submission(cluster_config(), LOCAL, resume=True)
    message = str(caught.value)
    assert f"nothing to resume: no label store at {tmp_path / 'out' / 'labels.db'}" in message
    assert "submit without --resume" in message
    assert "--more-rounds N" in message


def test_remote_store_not_looked_at(cluster_config, tmp_path):
    # A remote cluster needs a database store, which the loop does not check for a run either.
    _existing_run(tmp_path)
    path = cluster_config(
        labels={"store": "postgresql+psycopg://al@db.example.com:5432/labels"},
        cluster={"shared_paths": [str(tmp_path)]},
    )
    prepared = prepare_submission(path, REMOTE)
    assert prepared.address == REMOTE


def test_job_fix_only_inside_job(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    assert submitted_job_fix("used") is None

    monkeypatch.setenv(CONFIG_ENV_VAR, "name: x\n")
    used = submitted_job_fix("used")
    assert "submit again with --more-rounds N or --resume" in used
    assert "set output (or labels.store) in the config" in used
    assert "--output" not in used
    assert "submit without --resume" in submitted_job_fix("missing")
    assert "original settings" in submitted_job_fix("changed")


def test_no_agent_failure_names_fix():
    reason = "Request failed with status code 500: No available agent to submit job, please try again later."
    message = submission_failure(LOCAL, reason)
    assert message.startswith(f"submitting the job to {LOCAL} failed: {reason[:-1]}; the head node's dashboard agent")
    assert "dashboard_agent.log" in message
    assert "--dashboard-agent-listen-port" in message


def test_other_failure_unchanged():
    assert submission_failure(LOCAL, "HTTP 400: bad entrypoint") == f"submitting the job to {LOCAL} failed: HTTP 400: bad entrypoint"
