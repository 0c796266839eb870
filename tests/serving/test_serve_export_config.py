"""``al-ray serve export-config``: a Serve config that Ray Serve's schema accepts and that really deploys."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from al_ray.cli import main
from al_ray.config import parse_config
from al_ray.errors import ConfigError
from al_ray.serving.builders import ROUTER_BUILDER, VERSION_BUILDER, build_router
from al_ray.serving.errors import ServingError
from al_ray.serving.export import build_serve_config, validate_serve_config

TRACKING = "http://mlflow.example:5000"


def _config(**serving):
    return parse_config(
        {
            "name": "letter",
            "seed": 3,
            "data": {"dataset": "letter_recognition"},
            "tracking": {"uri": TRACKING},
            "serving": {"host": "0.0.0.0", "port": 8000, **serving},
        }
    )


def _write(tmp_path, config: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def test_export_cli_writes_valid_config(tmp_path, capsys):
    config = _write(tmp_path, {
        "name": "letter", "data": {"dataset": "letter_recognition"}, "tracking": {"uri": TRACKING},
        "serving": {"host": "0.0.0.0", "weights": {"champion": 0.75, "challenger": 0.25}, "sticky": True},
    })
    output = tmp_path / "serve.yaml"

    assert main(["serve", "export-config", config, "--output", str(output)]) == 0

    assert f"wrote the Serve config of letter-margin to {output}" in capsys.readouterr().out
    document = yaml.safe_load(output.read_text(encoding="utf-8"))
    schema = ServeDeploySchema.model_validate(document)
    assert schema.http_options.host == "0.0.0.0"
    assert schema.http_options.port == 8000
    apps = {app.name: app for app in schema.applications}
    assert list(apps) == ["al_ray-version-champion", "al_ray-version-challenger", "al_ray"]
    champion = apps["al_ray-version-champion"]
    assert champion.import_path == VERSION_BUILDER
    assert champion.route_prefix is None
    assert champion.args == {"tracking_uri": TRACKING, "name": "letter-margin", "version": "champion"}
    assert apps["al_ray-version-challenger"].args["version"] == "challenger"
    router = apps["al_ray"]
    assert router.import_path == ROUTER_BUILDER
    assert router.route_prefix == "/"
    assert router.args["champion_app"] == "al_ray-version-champion"
    assert router.args["challenger_app"] == "al_ray-version-challenger"
    assert router.args["challenger_weight"] == 0.25
    assert router.args["sticky"] is True
    for app in schema.applications:
        assert [d.name for d in app.deployments] in (["ModelVersion"], ["Router"])
        assert app.deployments[0].ray_actor_options.num_cpus == 0.1


def test_export_cli_prints_without_output(tmp_path, capsys):
    config = _write(tmp_path, {"name": "letter", "data": {"dataset": "letter_recognition"}})

    assert main(["serve", "export-config", config, "--tracking-uri", TRACKING, "--champion", "4",
                 "--challenger", "none", "--name", "letters"]) == 0

    document = yaml.safe_load(capsys.readouterr().out)
    ServeDeploySchema.model_validate(document)
    names = [app["name"] for app in document["applications"]]
    assert names == ["al_ray-version-4", "al_ray"]
    assert document["applications"][0]["args"] == {"tracking_uri": TRACKING, "name": "letters", "version": "4"}
    router = document["applications"][1]["args"]
    assert router["challenger_app"] is None
    assert router["challenger_weight"] == 0.0


def test_export_cli_needs_tracking_uri(tmp_path, capsys):
    config = _write(tmp_path, {"name": "letter", "data": {"dataset": "letter_recognition"}})

    assert main(["serve", "export-config", config]) == 2

    error = capsys.readouterr().err
    assert "sets no tracking.uri" in error
    assert "--tracking-uri" in error


def test_same_champion_and_challenger_rejected():
    with pytest.raises(ConfigError, match="champion and challenger are both '3'"):
        build_serve_config(_config(), tracking_uri=TRACKING, model_name="m", champion="3", challenger="3")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["applications"][0].update(import_pth="x"), "applications[0].import_pth"),
        (lambda d: d["applications"][2]["deployments"][0].update(num_replica=2), "deployments[0].num_replica"),
        (lambda d: d["http_options"].update(hots="0.0.0.0"), "http_options.hots"),
        (lambda d: d["applications"][2]["args"].update(challenger_wieght=0.5), "challenger_wieght"),
        (lambda d: d["applications"][0]["args"].pop("name"), "name"),
        (lambda d: d["applications"][1].update(import_path="al_ray.serving.app:Router"), "use one of"),
        (lambda d: d["applications"][2].update(route_prefix="no-slash"), "route_prefix 'no-slash'"),
        (lambda d: d["applications"][2].update(name=""), "ServeDeploySchema"),
    ],
)
def test_validation_rejects_bad_document(mutate, message):
    document = build_serve_config(_config(), tracking_uri=TRACKING, model_name="m")
    mutate(document)
    with pytest.raises(ServingError, match=re.escape(message)):
        validate_serve_config(document)


def test_router_builder_accepts_exported_args():
    # Serve's own builder call: it validates the args against the annotated model and binds the app.
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve.deployment import Application

    document = build_serve_config(_config(), tracking_uri=TRACKING, model_name="m")
    router_args = document["applications"][-1]["args"]
    application = call_user_app_builder_with_args_if_necessary(build_router, router_args)
    assert isinstance(application, Application)
    with pytest.raises(Exception, match="challenger_wieght"):
        call_user_app_builder_with_args_if_necessary(build_router, {**router_args, "challenger_wieght": 1.0})


# A real deploy of the exported config, through the call that `serve deploy` ends in.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _register_two_versions(tmp_path) -> str:
    from mlflow.tracking import MlflowClient

    from al_ray.data.shipped import load_shipped
    from al_ray.loop.model_io import save_model
    from al_ray.models.sklearn_adapter import SklearnClassifier, build_estimator
    from al_ray.tracking.registry import ModelRegistry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = load_shipped("letter_recognition")
    registry = ModelRegistry(uri)
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("export", artifact_location=str(tmp_path / "artifacts"))).info.run_id
    for round_index, rows in enumerate((slice(0, 1500), slice(1500, 2000))):
        estimator = build_estimator("logistic_regression", {"max_iter": 300}, standardize=True, seed=0)
        model = SklearnClassifier(estimator, data.classes).fit(data.features[rows], data.labels[rows])
        path = tmp_path / f"round{round_index}.pkl"
        save_model(model, path)
        lineage = {"n_labeled": 1, "labeled_hash": "x", "strategy": "margin", "seed": 0, "parent_version": ""}
        registry.register_round(
            run_id, path, name="letters", round_index=round_index, lineage=lineage, metrics={}, classes=data.classes
        )
    registry.set_alias("letters", "champion", "1")
    registry.set_alias("letters", "challenger", "2")
    return uri


def _wait_running(names: set[str], *, timeout_s: float) -> None:
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        applications = serve.status().applications
        states = {name: applications[name].status if name in applications else "MISSING" for name in names}
        if all(state == "RUNNING" for state in states.values()):
            return
        failed = {name: applications[name].message for name, state in states.items() if state == "DEPLOY_FAILED"}
        assert not failed, failed
        assert time.monotonic() < deadline, {
            name: (state, applications[name].message if name in applications else "") for name, state in states.items()
        }
        time.sleep(0.5)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_exported_config_deploys(ray_local, tmp_path):
    from ray import serve
    from ray.serve.context import _get_global_client

    from al_ray.data.shipped import load_shipped

    uri = _register_two_versions(tmp_path)
    port = _free_port()
    config = parse_config({
        "name": "letter", "data": {"dataset": "letter_recognition"},
        "serving": {"port": port, "weights": {"champion": 0.5, "challenger": 0.5}},
    })
    document = build_serve_config(config, tracking_uri=uri, model_name="letters")

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        _get_global_client().deploy_apps(ServeDeploySchema.model_validate(document))
        _wait_running({app["name"] for app in document["applications"]}, timeout_s=120)
        rows = load_shipped("letter_recognition").features[-50:].tolist()
        url = f"http://127.0.0.1:{port}"
        answered: set[str] = set()
        deadline = time.monotonic() + 120
        while answered != {"1", "2"} and time.monotonic() < deadline:
            try:
                answered.add(_post(f"{url}/predict", {"rows": rows[:5]})["version"])
            except OSError:
                time.sleep(0.5)  # the challenger attaches in the background; 503 until the champion is up

        assert answered == {"1", "2"}
        with urllib.request.urlopen(f"{url}/versions", timeout=30) as response:
            versions = json.loads(response.read())
        assert versions["champion"]["version"] == "1"
        assert versions["challenger"]["version"] == "2"
        assert versions["challenger"]["weight"] == 0.5
        assert versions["champion"]["app"] == "al_ray-version-champion"
    finally:
        serve.shutdown()
