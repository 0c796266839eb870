#!/usr/bin/env bash
# Set up, then run the test suite with the servers it needs; extra arguments go to pytest.
#
#   bash scripts/test.sh                # everything, as CI runs it
#   bash scripts/test.sh tests/labels   # one folder
#
# Starts a private PostgreSQL on 127.0.0.1 for the label-store tests and stops
# it when pytest ends, whatever the outcome. pytest's own exit status is
# returned, so a run that collects no test (exit 5) fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export RAY_USAGE_STATS_ENABLED=0
export RAY_AUTH_MODE=disabled

bash scripts/setup.sh
bash scripts/system_packages.sh

# The Airflow DAG test parses the DAG with Airflow's own DagBag. Airflow pins
# versions that clash with al_ray's, so it lives in a venv of its own. Its
# install (about 40 s) runs in the background while pytest starts. The DAG
# tests wait for the exit status in $AL_RAY_AIRFLOW_BUILD/done, and the
# marker file .installed is written only after pip succeeds.
build_airflow() {
    [ -f .venv-airflow/.installed ] && return 0
    python3 -m venv .venv-airflow &&
        .venv-airflow/bin/python -m pip install --quiet --disable-pip-version-check apache-airflow-task-sdk==1.3.2 &&
        touch .venv-airflow/.installed
}
airflow_build=$(mktemp -d /tmp/al_ray_airflow.XXXXXX)
(
    airflow_status=0
    build_airflow > "$airflow_build/log" 2>&1 || airflow_status=$?
    echo "$airflow_status" > "$airflow_build/done.tmp"
    mv "$airflow_build/done.tmp" "$airflow_build/done"
) &
airflow_pid=$!
export AL_RAY_AIRFLOW_PYTHON="$PWD/.venv-airflow/bin/python"
export AL_RAY_AIRFLOW_BUILD="$airflow_build"

# Everything the suite needs is now installed and started, so a test that
# finds a tool or server missing fails instead of skipping.
export CI=true

pg_root=$(mktemp -d /tmp/al_ray_pg.XXXXXX)
chmod 755 "$pg_root"
pg_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
clean_up() {
    bash scripts/postgres.sh stop "$pg_root/data" || true
    rm -rf "$pg_root"
    kill "$airflow_pid" 2>/dev/null || true
    wait "$airflow_pid" 2>/dev/null || true
    rm -rf "$airflow_build"
}
trap clean_up EXIT
AL_RAY_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "$pg_root/data" "$pg_port")
export AL_RAY_TEST_POSTGRES_URL

# A hung Ray setup must fail the run, not eat CI's 90 minutes: 40 minutes in all.
status=0
timeout --signal=INT --kill-after=60 2400 .venv/bin/python -m pytest -q "$@" || status=$?
exit "$status"
