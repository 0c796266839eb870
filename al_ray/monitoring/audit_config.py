"""Config sections for the audit log (``monitoring.audit``) and the Prometheus metrics (``monitoring.metrics``)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from al_ray.config_base import Section

__all__ = ["AuditConfig", "MetricsConfig"]

# Prometheus metric names: https://prometheus.io/docs/concepts/data_model/
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class AuditConfig(Section):
    """The append-only, hash-chained log of labels, model versions, deployments and trigger decisions."""

    enabled: bool = Field(False, description="write an audit entry for every label, model version, rollout and trigger")
    path: str | None = Field(
        None,
        description="SQLAlchemy URL, SQLite file, or a file ending in .jsonl for JSON lines; "
        "default: OUTPUT/audit.db",
    )
    actor: str | None = Field(
        None,
        min_length=1,
        description="who the loop's own entries name (model versions, rollouts); default: the OS user",
    )


class MetricsConfig(Section):
    """Prometheus metrics of the loop, the watcher and the labeling service."""

    enabled: bool = Field(False, description="serve Prometheus metrics over HTTP while the process runs")
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address the metrics endpoint binds; 0.0.0.0 in a container so Prometheus can reach it",
    )
    port: int = Field(9464, ge=0, le=65535, description="port of the metrics endpoint; 0 picks a free one")
    namespace: str = Field(
        "al_ray",
        description="prefix of every metric name; the shipped alert rules and dashboard expect al_ray",
    )
    textfile: str | None = Field(
        None,
        description="also write the metrics to this .prom file after every round, for node_exporter's "
        "textfile collector (short runs that end before a scrape)",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, namespace: str) -> str:
        if not _METRIC_NAME.match(namespace):
            raise ValueError(
                f"namespace must be a valid Prometheus metric name prefix (letters, digits, '_' and ':', "
                f"not starting with a digit), got {namespace!r}; the default is al_ray"
            )
        return namespace

    @field_validator("textfile")
    @classmethod
    def _check_textfile(cls, textfile: str | None) -> str | None:
        # node_exporter's textfile collector reads only files named *.prom.
        if textfile is not None and not textfile.endswith(".prom"):
            raise ValueError(f"textfile must end in .prom, which node_exporter reads, got {textfile!r}")
        return textfile
