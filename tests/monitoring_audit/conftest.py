"""Audit log locations for every back end: a SQLite file, a JSON-lines file, a PostgreSQL schema."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa


@pytest.fixture(params=["sqlite", "jsonl", "postgresql"])
def audit_location(request, tmp_path):
    """Yield the location of a new, empty audit log on one back end."""
    if request.param == "sqlite":
        yield str(tmp_path / "audit.db")
        return
    if request.param == "jsonl":
        yield str(tmp_path / "audit.jsonl")
        return
    url, engine = request.getfixturevalue("postgres_server")
    schema = f"al_ray_audit_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    # libpq's options parameter sets search_path on every connection, so the
    # log's unqualified table name lands in the new schema.
    scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield scoped.render_as_string(hide_password=False)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
