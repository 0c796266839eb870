"""Shared fixtures: a local Ray session per test module, settings that do not hang on 2 cores."""

from __future__ import annotations

import os

# Set before Ray is imported anywhere: no usage stats, no token auth for a local
# test cluster (Ray 2.60 enables token auth by default once a token file exists).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """Start one local Ray for the whole test module and shut it down after."""
    import logging

    import ray
    from ray.data import DataContext

    from al_ray.runtime import RAY_ENV_VARS

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        runtime_env={"env_vars": dict(RAY_ENV_VARS)},
    )
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    yield ray
    ray.shutdown()
