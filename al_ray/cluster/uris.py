"""The locations of a config's data, label store, MLflow store and output, and whether a cluster can reach them.

A job on a remote cluster runs on other machines, so every location it reads
or writes must be reachable from there: object storage, an NFS folder mounted
on every node, a PostgreSQL server, an MLflow tracking server. A local file
path, a SQLite file or a server on 127.0.0.1 is local-only, with two
exceptions: data inside the uploaded working_dir travels with the job, and a
shipped dataset is part of al_ray itself.

SQLite is local-only even under a shared folder: SQLite's file locks are not
reliable over a network file system, and the label store's WAL journal needs
memory shared by the processes of one host.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from al_ray.cluster.address import is_loopback_host
from al_ray.cluster.storage import is_object_store_uri

__all__ = ["Location", "Problem", "config_locations", "local_only_problems"]

@dataclass(frozen=True)
class Location:
    """One place a run reads or writes, as the config names it (or as the loop's default places it)."""

    key: str  # the config key, e.g. "labels.store"
    value: str  # as the config writes it, with any password hidden
    kind: Literal["shipped", "path", "object_store", "sqlite", "database", "mlflow_server", "other"]
    is_default: bool = False  # not set in the config: the loop's default under the output folder
    host: str | None = None  # database or server host
    # The value with its password, for connecting; never printed.
    raw: str | None = field(default=None, repr=False)

    @property
    def local_path(self) -> Path | None:
        """The file or folder on this machine, for kinds "path" and "sqlite"."""
        if self.kind == "path":
            return Path(self.value.removeprefix("file://")).expanduser()
        if self.kind == "sqlite":
            if "://" not in self.value:
                return Path(self.value).expanduser()
            database = self.value.split("?", 1)[0].split("://", 1)[1].removeprefix("/")
            return Path(database) if database not in ("", ":memory:") else None
        return None


def _hide_password(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def _classify_path(key: str, value: str, *, is_default: bool = False) -> Location:
    if is_object_store_uri(value):
        return Location(key, value, "object_store", is_default)
    return Location(key, value, "path", is_default)


def _classify_store(key: str, value: str, *, is_default: bool = False) -> Location:
    """Classify a SQLAlchemy URL or a plain file path (a SQLite file, kept as written)."""
    if "://" not in value:
        return Location(key, value, "sqlite", is_default)
    scheme = value.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        return Location(key, value, "sqlite", is_default)
    host = urllib.parse.urlsplit(value).hostname
    return Location(key, _hide_password(value), "database", is_default, host=host, raw=value)


def _classify_tracking(value: str) -> Location:
    parsed = urllib.parse.urlsplit(value)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return Location("tracking.uri", _hide_password(value), "mlflow_server", host=parsed.hostname, raw=value)
    if scheme == "sqlite":
        return Location("tracking.uri", value, "sqlite")
    if scheme in ("", "file"):
        # MLflow reads a plain path as a file store.
        return Location("tracking.uri", value, "path")
    if scheme.split("+", 1)[0] in ("postgresql", "mysql", "mssql"):
        return Location("tracking.uri", _hide_password(value), "database", host=parsed.hostname, raw=value)
    # databricks, and other schemes that MLflow plugins register.
    return Location("tracking.uri", value, "other")


def config_locations(config, output_dir: Path) -> list[Location]:
    """List the locations a run of ``config`` uses, with the loop's defaults under ``output_dir`` filled in.

    ``output_dir`` is the run's output folder: ``config.output``, or the
    default the loop picks (``runs/<name>/<strategy>``).
    """
    locations: list[Location] = []
    if config.data.dataset is not None:
        locations.append(Location("data.dataset", config.data.dataset, "shipped"))
    else:
        locations.append(_classify_path("data.path", str(config.data.path)))

    output = str(output_dir)
    locations.append(_classify_path("output", output, is_default=config.output is None))

    store = config.labels.store
    if store is None:
        locations.append(_classify_store("labels.store", str(PurePosixPath(output) / "labels.db"), is_default=True))
    else:
        locations.append(_classify_store("labels.store", store))

    if config.tracking.enabled:
        if config.tracking.uri is None:
            default = f"sqlite:///{PurePosixPath(output) / 'mlflow.db'}"
            locations.append(Location("tracking.uri", default, "sqlite", is_default=True))
        else:
            locations.append(_classify_tracking(config.tracking.uri))

    if config.serving.feedback.path is not None:
        locations.append(_classify_store("serving.feedback.path", config.serving.feedback.path))
    return locations


def _is_under(path: Path, folders: list[Path]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


@dataclass(frozen=True)
class Problem:
    """A location a remote cluster cannot reach: what it is, and how to fix it."""

    location: Location
    reason: str
    fix: str

    def __str__(self) -> str:
        note = " (the default, under the output folder)" if self.location.is_default else ""
        return f"{self.location.key} {self.location.value!r}{note} {self.reason}. Fix: {self.fix}"


_MLFLOW_SERVER_FIX = "set tracking.uri to an MLflow tracking server, e.g. http://mlflow.example.com:5000"
_SHARED_OUTPUT_FIX = "set output to a folder on a shared mount (NFS) and list that mount in cluster.shared_paths"
_PATH_FIXES = {
    "data.path": (
        "put the file in object storage (s3://, gs://, abfs://), on a shared mount listed in "
        "cluster.shared_paths, or inside the uploaded working_dir"
    ),
    "output": _SHARED_OUTPUT_FIX,
    "tracking.uri": _MLFLOW_SERVER_FIX,
}
_SQLITE_FIXES = {
    "labels.store": "set labels.store to a PostgreSQL URL, e.g. postgresql+psycopg://USER@HOST:5432/labels",
    "tracking.uri": _MLFLOW_SERVER_FIX,
    "serving.feedback.path": (
        "remove serving.feedback.path from configs submitted to a remote cluster; "
        "the feedback store can only be a SQLite file"
    ),
}
_SQLITE_REASON = (
    "is a SQLite file, which cluster nodes cannot share: it must sit on the local disk of one machine, "
    "because SQLite's file locks are not reliable over a network file system"
)
_WAL_REASON = (
    "is a SQLite file, which cluster nodes cannot share: it must sit on the local disk of one machine, "
    "because its WAL journal works only between processes of one host"
)
_SQLITE_REASONS = {"labels.store": _WAL_REASON, "serving.feedback.path": _WAL_REASON}


def local_only_problems(
    locations: list[Location], *, working_dir: Path | None, shared_paths: list[str]
) -> list[Problem]:
    """Return one problem per location that a remote cluster cannot reach."""
    shared = [Path(folder) for folder in shared_paths]
    problems = []
    for location in locations:
        found = _problem(location, working_dir, shared)
        if found is not None:
            problems.append(Problem(location, *found))
    return problems


def _problem(location: Location, working_dir: Path | None, shared: list[Path]) -> tuple[str, str] | None:
    """Return ``(reason, fix)`` when the cluster cannot use ``location``."""
    if location.kind == "shipped":
        return None
    if location.kind == "object_store":
        if location.key == "data.path":
            return None
        # TODO: the loop writes its output folder with local file operations;
        # an object-store output needs the loop to write through pyarrow.fs.
        return "is object storage, which the loop cannot write its output folder to yet", _SHARED_OUTPUT_FIX
    if location.kind == "path":
        path = location.local_path
        if path is not None and path.is_absolute() and _is_under(path, shared):
            return None
        in_working_dir = working_dir is not None and path is not None and _is_under(path.resolve(), [working_dir])
        if location.key == "data.path" and in_working_dir:
            return None  # uploaded with the working_dir
        kind = "a local MLflow file store" if location.key == "tracking.uri" else "a path on this machine"
        fix = _PATH_FIXES.get(location.key, "use a location every cluster node can reach")
        return f"is {kind}, which the cluster cannot reach", fix
    if location.kind == "sqlite":
        return _SQLITE_REASONS.get(location.key, _SQLITE_REASON), _SQLITE_FIXES.get(location.key, "use a PostgreSQL URL")
    if location.kind in ("database", "mlflow_server") and is_loopback_host(location.host):
        return (
            f"names {location.host}, which on a cluster node means that node itself",
            "use a host name or address the cluster nodes can reach",
        )
    return None
