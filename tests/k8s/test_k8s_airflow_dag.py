"""The Airflow DAG, parsed by a real Airflow in its own venv, and its task run through Airflow's task object.

Airflow is not installed in the project's venv (its pins clash with ray's and
mlflow's, and it adds 300 MB). The tests run a second interpreter, from
AL_RAY_AIRFLOW_PYTHON (default /tmp/airflow-venv/bin/python), built with:

    python3 -m venv /tmp/airflow-venv
    /tmp/airflow-venv/bin/pip install apache-airflow-task-sdk==1.3.2

Without it they skip, except under CI=true, where they fail. scripts/test.sh
builds it in the background and names a folder in AL_RAY_AIRFLOW_BUILD, whose
``done`` file receives the build's exit status; the tests wait for that file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, missing_tool

DAG_FOLDER = ROOT / "k8s" / "airflow"
AIRFLOW_PYTHON = Path(os.environ.get("AL_RAY_AIRFLOW_PYTHON", "/tmp/airflow-venv/bin/python"))
BUILD_WAIT_S = 600

# Runs in the Airflow venv: parse the folder as the scheduler does, and describe the DAG.
_PARSE = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    dags = {}
    for dag_id, dag in bag.dags.items():
        tasks = {}
        for task in dag.tasks:
            tasks[task.task_id] = {
                "operator": type(task).__name__,
                "op_args": [str(arg) for arg in task.op_args],
                "callable": task.python_callable.__qualname__,
                "names": list(task.python_callable.__code__.co_names),
                "retries": task.retries,
            }
        dags[dag_id] = {"schedule": str(dag.schedule), "catchup": dag.catchup,
                        "max_active_runs": dag.max_active_runs, "tasks": tasks}
    errors = {str(path): str(error) for path, error in bag.import_errors.items()}
    print(json.dumps({"dags": dags, "errors": errors}))
    """
)

# Runs in the Airflow venv: call the task's callable, with al_ray and its
# dependencies importable from the project and its venv, after Airflow's own.
_CALL = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag

    dag_folder, project, site_packages, config, address = sys.argv[1:6]
    task = DagBag(dag_folder=dag_folder).dags["al_ray_round"].get_task("submit_round")
    sys.path.extend([project, site_packages])
    try:
        print(json.dumps({"result": task.python_callable(config, address)}))
    except Exception as error:
        print(json.dumps({"error": type(error).__module__ + "." + type(error).__name__, "message": str(error)}))
    """
)


def _wait_for_background_build() -> None:
    """Wait for scripts/test.sh's background Airflow install, and fail with its log if it failed."""
    folder = os.environ.get("AL_RAY_AIRFLOW_BUILD")
    if not folder:
        return
    done = Path(folder) / "done"
    deadline = time.monotonic() + BUILD_WAIT_S
    while not done.is_file():
        if time.monotonic() > deadline:
            pytest.fail(f"the Airflow venv install did not finish within {BUILD_WAIT_S} s; its log is {folder}/log")
        time.sleep(1.0)
    status = done.read_text(encoding="utf-8").strip()
    if status != "0":
        log = (Path(folder) / "log").read_text(encoding="utf-8", errors="replace")
        pytest.fail(f"installing the Airflow venv failed with exit status {status}:\n{log[-3000:]}")


def _airflow(script: str, *args: str, tmp_path: Path) -> dict:
    _wait_for_background_build()
    if not AIRFLOW_PYTHON.is_file():
        missing_tool(f"no Airflow interpreter at {AIRFLOW_PYTHON}; build it as this module's docstring shows")
    environment = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), PYTHONPATH="")
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", script, *args],
        check=False, capture_output=True, text=True, timeout=180, cwd=ROOT, env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_dag_parses(tmp_path):
    parsed = _airflow(_PARSE, str(DAG_FOLDER), tmp_path=tmp_path)
    assert parsed["errors"] == {}
    assert list(parsed["dags"]) == ["al_ray_round"]
    dag = parsed["dags"]["al_ray_round"]
    assert dag["schedule"] == "0 3 * * *"
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert list(dag["tasks"]) == ["submit_round"]
    task = dag["tasks"]["submit_round"]
    assert task["op_args"] == ["{{ var.value.al_ray_config }}", "{{ var.value.al_ray_address }}"]
    assert "run_scheduled_round" in task["names"]
    assert task["retries"] == 0


@pytest.mark.slow
def test_dag_task_calls_submission_api(tmp_path):
    # Nothing listens on the address, so the submission API's reachability probe
    # fails: the task reached al_ray's Job Submission client and failed the task.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    site_packages = sysconfig.get_paths()["purelib"]

    outcome = _airflow(
        _CALL, str(DAG_FOLDER), str(ROOT), site_packages, str(ROOT / "configs" / "mnist.yaml"), address,
        tmp_path=tmp_path,
    )
    assert outcome.get("error") == "al_ray.errors.ClusterError", outcome
    assert f"the Ray dashboard at {address} is unreachable" in outcome["message"]
