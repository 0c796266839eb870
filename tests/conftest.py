"""Shared fixtures: a local Ray session per test module, settings that do not hang on 2 cores."""

from __future__ import annotations

import os

# Set before Ray is imported anywhere: no usage stats, no token auth for a local
# test cluster (Ray 2.60 enables token auth by default once a token file exists).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import pytest


@pytest.fixture(autouse=True)
def _restore_package_logger():
    """Undo what `al-ray`'s main() does to the al_ray logger, so caplog sees later tests' records.

    main() gives the package logger its own stderr handler and stops it from
    propagating to the root logger, where pytest's caplog listens.
    """
    import logging

    package_logger = logging.getLogger("al_ray")
    saved = (list(package_logger.handlers), package_logger.level, package_logger.propagate)
    yield
    package_logger.handlers[:] = saved[0]
    package_logger.setLevel(saved[1])
    package_logger.propagate = saved[2]


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


POSTGRES_URL_VARIABLE = "AL_RAY_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server():
    """Yield ``(url, engine)`` of the PostgreSQL server named by AL_RAY_TEST_POSTGRES_URL.

    Without the variable the test is skipped, except under CI=true, where it
    fails: CI must never skip the PostgreSQL half of a test in silence.
    """
    import sqlalchemy as sa

    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        message = (
            f"{POSTGRES_URL_VARIABLE} is not set; start a server with "
            f"`scripts/postgres.sh start DIR PORT` and export the URL it prints"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    engine = sa.create_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def label_store_url(request, tmp_path):
    """Yield a label store URL: a new SQLite file, or a new, empty schema on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'labels.db'}"
        return
    import uuid

    import sqlalchemy as sa

    url, engine = request.getfixturevalue("postgres_server")
    schema = f"al_ray_test_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    # libpq's options parameter sets search_path on every connection, so the
    # store's unqualified table names land in the new schema.
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield scoped.render_as_string(hide_password=False)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
