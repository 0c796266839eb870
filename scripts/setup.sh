#!/usr/bin/env bash
# Create .venv (if missing) and install al_ray with its pinned dependencies and
# the test tools. Safe to run again: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: al_ray needs Python 3.11 or newer; $("$python" --version 2>&1) found. Set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi

pip_args=(--quiet --disable-pip-version-check)
# torch==2.13.0 is a CPU wheel kept on local disk here; any other torch release
# would pull a multi-GB CUDA build from the index.
if [ -d /opt/wheels ]; then
    pip_args+=(--find-links /opt/wheels)
fi
.venv/bin/python -m pip install "${pip_args[@]}" -e '.[dev]'
echo "setup: .venv ready ($(.venv/bin/python -c 'import ray, torch, mlflow; print(f"ray {ray.__version__}, torch {torch.__version__}, mlflow {mlflow.__version__}")'))"
