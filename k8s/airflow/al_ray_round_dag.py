"""Airflow DAG: one more active-learning round on the Ray cluster, every night.

The task submits ``al-ray run CONFIG --more-rounds 1`` through Ray's Job
Submission API and waits for the job, as the RayCronJob in
k8s/base/raycronjob.yaml does inside Kubernetes. The first night starts the
run, and each later night runs one round past the last completed one. Use one
of the two schedulers, not both. The task's worker needs al_ray installed (the
al_ray image has it) and these Airflow Variables:

- ``al_ray_config``: path of the run's YAML config on the worker.
- ``al_ray_address``: the Ray dashboard, e.g. ``http://al-ray-head-svc.al-ray-prod:8265``.

With token authentication on the cluster, the worker's environment needs
``RAY_AUTH_TOKEN`` (key ``auth_token`` of the Secret al-ray-ray-token).
"""

from __future__ import annotations

import datetime

from airflow.sdk import dag, task

DAG_ID = "al_ray_round"
SCHEDULE = "0 3 * * *"
# Hours the task follows the job before it fails; the RayJob's activeDeadlineSeconds is the same 6 hours.
TIMEOUT_S = 6 * 3600.0


@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["al_ray"],
    doc_md=__doc__,
)
def al_ray_round():
    @task(task_id="submit_round", retries=0, execution_timeout=datetime.timedelta(seconds=TIMEOUT_S + 600))
    def submit_round(config_path: str, address: str) -> dict[str, str]:
        # Imported here so the scheduler parses this file without al_ray and its dependencies.
        from al_ray.cluster.scheduled import run_scheduled_round

        return run_scheduled_round(config_path, address, timeout_s=TIMEOUT_S, more_rounds=1)

    # Templates, rendered when the task runs: parsing the file reads no Variable.
    submit_round("{{ var.value.al_ray_config }}", "{{ var.value.al_ray_address }}")


round_dag = al_ray_round()
