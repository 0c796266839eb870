"""The MLflow model registry of an active-learning run: one model version per round.

Each completed round's classifier is logged in the run as an MLflow pyfunc
model and registered as a new version of one registered model. The version's
tags record its lineage (round, labeled count, a hash of the labeled row_ids,
strategy, seed, parent version and run id), and the round's metrics are linked
to its logged model. The aliases ``champion`` and ``challenger`` mark the
version in service and the candidate beside it.

Registering a round twice returns the version it already has, so a run that
is killed and resumed keeps its version numbers.

The registry talks to MLflow through ``MlflowClient`` with an explicit URI.
Logging and loading a model also set MLflow's process-wide tracking URI while
they run, because MLflow's model logging reads it. The previous value is
restored afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from al_ray.errors import ConfigError, DataError, TrackingError

__all__ = [
    "ALIASES",
    "LINEAGE_KEYS",
    "ModelRegistry",
    "VersionInfo",
    "check_reachable",
    "labeled_hash",
    "model_pip_requirements",
]

logger = logging.getLogger(__name__)

ALIASES = ("champion", "challenger")
# Tags of every registered version. ``round`` and ``run_id`` come from
# register_round's arguments, the rest from its ``lineage``.
LINEAGE_KEYS = ("round", "n_labeled", "labeled_hash", "strategy", "seed", "parent_version", "run_id")
REACHABLE_TIMEOUT_S = 3.0

_CALLER_LINEAGE_KEYS = ("n_labeled", "labeled_hash", "strategy", "seed", "parent_version")
_PYFUNC_SCRIPT = Path(__file__).with_name("classifier_pyfunc.py")
_CLASSIFIER_ARTIFACT = "classifier"
# Distributions a round's pyfunc model imports when it is loaded.
_MODEL_DISTRIBUTIONS = ("al_ray", "cloudpickle", "numpy", "pandas", "scikit-learn")
_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
_STORE_HINT = "tracking.uri in the config, or --tracking-uri for `al-ray models`"


def labeled_hash(row_ids: Sequence[int] | np.ndarray) -> str:
    """Return a short fingerprint of a labeled set.

    The fingerprint is the SHA-256 digest of the unique row_ids, sorted
    ascending and written as little-endian int64 (8 bytes each, no separator),
    in hex, cut to its first 16 characters. It depends only on which rows are
    labeled, not on their order, so two rounds trained on the same rows carry
    the same hash.

    Parameters
    ----------
    row_ids : sequence of int or ndarray of shape (n_rows,)
        The labeled rows' ``row_id`` values.

    Raises
    ------
    DataError
        When ``row_ids`` are not integers.
    """
    values = np.asarray(row_ids)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise DataError(f"row_ids must be integers, got an array of dtype {values.dtype}")
    unique = np.unique(values.astype(np.int64, copy=False).ravel())
    return hashlib.sha256(unique.astype("<i8").tobytes()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _installed_requirements() -> tuple[str, ...]:
    pins = []
    for name in _MODEL_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return tuple(pins)


def model_pip_requirements(extra: Sequence[str] = ()) -> list[str]:
    """Return the pip requirements logged with a round's model: installed versions, pinned.

    Passing them to MLflow spares it from inferring requirements, which loads
    the model in a subprocess and takes seconds per model. MLflow adds its own
    ``mlflow==<version>`` line. ``extra`` adds what the classifier needs beyond
    scikit-learn, such as ``torch==2.13.0`` for a torch model.
    """
    return [*_installed_requirements(), *extra]


def check_reachable(uri: str, *, timeout_s: float = REACHABLE_TIMEOUT_S, existing: bool = False) -> None:
    """Check, cheaply, that an MLflow tracking store can be used before talking to it.

    An ``http(s)`` server must respond to a request within ``timeout_s``. A
    SQLite store's folder must exist, and with ``existing`` the database file
    too. Other stores are not checked here; MLflow reports their errors on
    first use.

    Raises
    ------
    TrackingError
        Naming ``uri``, what failed and how to fix it.
    """
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme in ("http", "https"):
        _check_server(uri, timeout_s)
    elif scheme == "sqlite":
        _check_sqlite(uri, existing)


def _check_server(uri: str, timeout_s: float) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # The server responded, if only with an error status.
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"MLflow tracking server {uri!r} is unreachable: {reason} (timeout {timeout_s:g} s); "
            f"start the server, or correct the tracking URI ({_STORE_HINT})"
        ) from None


def _check_sqlite(uri: str, existing: bool) -> None:
    # SQLAlchemy reads everything after "sqlite:///" as the path, so an
    # absolute path gives four slashes. No path at all means an in-memory store.
    text = uri.split("?", 1)[0].removeprefix("sqlite:///")
    if text.startswith("sqlite:") or text in ("", ":memory:"):
        return
    path = Path(text)
    if existing and not path.is_file():
        raise TrackingError(
            f"MLflow tracking store {uri!r} not found: no file {path}; pass the --output folder "
            "of a run that had tracking enabled, or the --tracking-uri it logged to"
        )
    if not path.parent.is_dir():
        raise TrackingError(
            f"MLflow tracking store {uri!r} cannot be created: the folder {path.parent} does not exist; "
            f"create it, or correct the tracking URI ({_STORE_HINT})"
        )


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, with its lineage tags and linked metrics."""

    name: str
    version: int
    aliases: tuple[str, ...]
    round_index: int | None
    n_labeled: int | None
    accuracy: float | None
    strategy: str | None
    parent_version: str | None
    created: datetime
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class ModelRegistry:
    """Register, alias, list and load the model versions of active-learning rounds.

    Parameters
    ----------
    tracking_uri : str
        MLflow tracking URI, also used as the registry URI. The loop's default
        is ``sqlite:///<output>/mlflow.db``.
    timeout_s : float
        How long :func:`check_reachable` waits for an HTTP tracking server.
    existing : bool
        Require a SQLite store's file to exist already, for read-only use.
    """

    def __init__(self, tracking_uri: str, *, timeout_s: float = REACHABLE_TIMEOUT_S, existing: bool = False) -> None:
        check_reachable(tracking_uri, timeout_s=timeout_s, existing=existing)
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # Writing.

    def register_round(
        self,
        run_id: str,
        model_path: str | Path,
        *,
        name: str,
        round_index: int,
        lineage: Mapping[str, Any],
        metrics: Mapping[str, float],
        classes: Sequence[str],
        extra_pip_requirements: Sequence[str] = (),
    ) -> str:
        """Log a round's saved model in ``run_id`` and register it as a version of ``name``.

        Parameters
        ----------
        run_id : str
            The MLflow run the model is logged in.
        model_path : path
            The classifier file that :func:`al_ray.loop.model_io.save_model` wrote.
        name : str
            Registered model name; created on first use.
        round_index : int
            The round that trained the model, stored as tag ``round``.
        lineage : mapping
            Values for the tags ``n_labeled``, ``labeled_hash``, ``strategy``,
            ``seed`` and ``parent_version`` (an empty string for round 0);
            further keys are stored as tags too.
        metrics : mapping of str to float
            The round's metrics, logged at step ``round_index`` and linked to
            the version's MLflow logged model.
        classes : sequence of str
            Class names: the columns of the pyfunc model's output.
        extra_pip_requirements : sequence of str
            Requirements beyond :func:`model_pip_requirements`, e.g. torch.

        Returns
        -------
        str
            The version number. When a version of ``name`` from the same run
            and round exists already, its number, and nothing is logged.
        """
        _check_model_name(name)
        missing = [key for key in _CALLER_LINEAGE_KEYS if key not in lineage]
        if missing:
            raise TrackingError(
                f"lineage is missing the key(s) {missing}; register_round needs {list(_CALLER_LINEAGE_KEYS)}"
            )
        model_path = Path(model_path)
        if not model_path.is_file():
            raise TrackingError(f"model file {model_path} not found; save the round's model before registering it")

        registered = self._find_round_version(name, run_id, round_index)
        if registered is not None:
            logger.info("round %d of run %s is already version %s of %r", round_index, run_id, registered, name)
            return registered

        started = time.perf_counter()
        tags = {key: str(value) for key, value in lineage.items()}
        tags.update(round=str(round_index), run_id=run_id)
        # MLflow's model logging, and the SQL registry resolving a models:/ source,
        # read the process-wide tracking URI.
        action = f"registering round {round_index} as a version of {name!r}"
        with self._store_errors(action), _tracking_uri(self.tracking_uri):
            self._ensure_registered_model(name)
            model_id, model_uri = self._log_pyfunc(
                run_id, model_path, round_index, tags, classes, list(extra_pip_requirements)
            )
            self._link_to_run(run_id, model_id, round_index, metrics)
            version = self.client.create_model_version(
                name, source=model_uri, run_id=run_id, tags=tags, model_id=model_id
            ).version
        logger.info(
            "round %d registered as version %s of %r in %.2f s", round_index, version, name, time.perf_counter() - started
        )
        return str(version)

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point ``alias`` (champion or challenger) of ``name`` at ``version``.

        ``version`` is a version number or an alias, so
        ``set_alias(name, "champion", "challenger")`` promotes the challenger.
        """
        if alias not in ALIASES:
            raise ConfigError(f"unknown alias {alias!r}; use one of {', '.join(ALIASES)}")
        resolved = self._resolve(name, str(version))
        with self._store_errors(f"setting alias {alias!r} of {name!r}"):
            self.client.set_registered_model_alias(name, alias, resolved.version)
        logger.info("alias %s of %r now points at version %s", alias, name, resolved.version)

    # Reading.

    def registered_models(self) -> list[str]:
        """Return the names of every registered model in the store, sorted."""
        names: list[str] = []
        token = None
        with self._store_errors("listing registered models"):
            while True:
                page = self.client.search_registered_models(page_token=token)
                names.extend(model.name for model in page)
                token = page.token
                if not token:
                    break
        return sorted(names)

    def list_versions(self, name: str) -> list[VersionInfo]:
        """Return every version of ``name``, oldest first; empty if the model is not registered."""
        _check_model_name(name)
        with self._store_errors(f"listing versions of {name!r}"):
            versions = self._search_versions(f"name = '{name}'")
            if not versions:
                return []
            # Search results carry no aliases (SQL store, MLflow 3.17), but the registered model does.
            aliases: dict[str, list[str]] = {}
            for alias, version in self.client.get_registered_model(name).aliases.items():
                aliases.setdefault(str(version), []).append(alias)
            return [
                self._version_info(version, aliases.get(str(version.version), []))
                for version in sorted(versions, key=lambda v: int(v.version))
            ]

    def describe(self, name: str, version_or_alias: str | int) -> VersionInfo:
        """Return one version, by number or by alias, with all its tags and metrics."""
        model_version = self._resolve(name, str(version_or_alias))
        with self._store_errors(f"reading version {model_version.version} of {name!r}"):
            return self._version_info(model_version, model_version.aliases or [])

    def artifact_uri(self, name: str, version_or_alias: str | int) -> str:
        """Return where the version's MLflow model is stored."""
        model_version = self._resolve(name, str(version_or_alias))
        with self._store_errors(f"locating version {model_version.version} of {name!r}"):
            return self.client.get_model_version_download_uri(name, model_version.version)

    def load(self, name: str, version_or_alias: str | int) -> Any:
        """Download a version's classifier file and return the classifier the loop saved."""
        from mlflow.artifacts import download_artifacts
        from mlflow.models import Model

        uri = self.artifact_uri(name, version_or_alias)
        base = uri.rstrip("/")
        with self._store_errors(f"loading {uri}"), tempfile.TemporaryDirectory(prefix="al_ray-model-") as folder:
            # The MLmodel file names the classifier's path inside the model.
            # Model.load is given a local copy because it rejects file:// URIs
            # of directories (MLflow 3.17).
            mlmodel = download_artifacts(
                artifact_uri=f"{base}/MLmodel", dst_path=folder, tracking_uri=self.tracking_uri
            )
            flavor = Model.load(mlmodel).flavors["python_function"]
            relative = flavor["artifacts"][_CLASSIFIER_ARTIFACT]["path"]
            local = download_artifacts(
                artifact_uri=f"{base}/{relative}", dst_path=folder, tracking_uri=self.tracking_uri
            )
            with open(local, "rb") as stream:
                return cloudpickle.load(stream)

    def load_pyfunc(self, name: str, version_or_alias: str | int) -> Any:
        """Return a version as an MLflow pyfunc model: ``predict`` gives a DataFrame of class probabilities."""
        import mlflow.pyfunc

        uri = self.artifact_uri(name, version_or_alias)
        with self._store_errors(f"loading {uri}"), _tracking_uri(self.tracking_uri):
            return mlflow.pyfunc.load_model(uri)

    # Helpers.

    def _resolve(self, name: str, version_or_alias: str):
        """Return the ModelVersion that a version number or alias names."""
        from mlflow.exceptions import MlflowException

        _check_model_name(name)
        try:
            if version_or_alias.isdigit():
                return self.client.get_model_version(name, version_or_alias)
            if version_or_alias in ALIASES:
                return self.client.get_model_version_by_alias(name, version_or_alias)
        except MlflowException as exc:
            # MLflow 3.17 reports an unset alias as an invalid parameter, not as a missing resource.
            unset_alias = version_or_alias in ALIASES and exc.error_code == "INVALID_PARAMETER_VALUE"
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or unset_alias:
                raise TrackingError(self._not_found_message(name, version_or_alias)) from None
            raise TrackingError(f"reading {name!r} from {self.tracking_uri!r} failed: {exc.message}") from exc
        raise ConfigError(
            f"invalid version {version_or_alias!r}; use a version number or one of the aliases {', '.join(ALIASES)}"
        )

    def _not_found_message(self, name: str, version_or_alias: str) -> str:
        known = [str(info.version) for info in self.list_versions(name)]
        if not known:
            return (
                f"registered model {name!r} not found in {self.tracking_uri!r}; "
                f"registered models: {', '.join(self.registered_models()) or 'none'}"
            )
        if version_or_alias in ALIASES:
            return f"no version of {name!r} has the alias {version_or_alias!r}; versions: {', '.join(known)}"
        return f"version {version_or_alias} of {name!r} not found; versions: {', '.join(known)}"

    def _find_round_version(self, name: str, run_id: str, round_index: int) -> str | None:
        with self._store_errors(f"searching versions of {name!r}"):
            found = self._search_versions(f"name = '{name}' and run_id = '{run_id}' and tags.round = '{round_index}'")
        versions = sorted(int(version.version) for version in found if version.tags.get("round") == str(round_index))
        return str(versions[0]) if versions else None

    def _search_versions(self, filter_string: str) -> list:
        found = []
        token = None
        while True:
            page = self.client.search_model_versions(filter_string, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(
                name, description="One version per active-learning round, registered by al_ray."
            )

    def _log_pyfunc(self, run_id, model_path, round_index, tags, classes, extra_requirements) -> tuple[str, str]:
        """Log the classifier file as a pyfunc model of ``run_id``, and return its model id and URI.

        Call with MLflow's tracking URI set to this registry's.
        """
        import mlflow.pyfunc
        from mlflow.models import Model, ModelSignature
        from mlflow.types import ColSpec, Schema

        experiment_id = self.client.get_run(run_id).info.experiment_id
        # Created here rather than by Model.log, which would put it in the
        # process's active experiment instead of the run's.
        logged = self.client.create_logged_model(
            experiment_id, name=f"round_{round_index:04d}", source_run_id=run_id, tags=tags
        )
        # The output columns are the class names. The input is left open
        # because the feature count belongs to the dataset, not to the registry.
        signature = ModelSignature(outputs=Schema([ColSpec("double", str(label)) for label in classes]))
        with warnings.catch_warnings():
            # MLflow prefixes the text with a color code, hence the leading ".*".
            warnings.filterwarnings("ignore", message=".*An input example was not provided", category=UserWarning)
            info = Model.log(
                artifact_path=None,
                name=f"round_{round_index:04d}",
                flavor=mlflow.pyfunc,
                model_id=logged.model_id,
                python_model=str(_PYFUNC_SCRIPT),
                artifacts={_CLASSIFIER_ARTIFACT: str(model_path)},
                pip_requirements=model_pip_requirements(extra_requirements),
                signature=signature,
                metadata={"classes": [str(label) for label in classes]},
            )
        return info.model_id, info.model_uri

    def _link_to_run(self, run_id: str, model_id: str, round_index: int, metrics: Mapping[str, float]) -> None:
        """List the model among the run's outputs at step ``round_index`` and give it the round's metrics.

        Model.log does both when given the run, but it reads the whole history
        of every run metric to find that step's values, one query per metric.
        A metric logged with a model id lands in the run's history too, so a
        metric the run already contains at this step is recorded twice there,
        as MLflow's own linking does.
        """
        from mlflow.entities import LoggedModelOutput, Metric

        self.client.log_outputs(run_id, [LoggedModelOutput(model_id, step=round_index)])
        timestamp_ms = int(time.time() * 1000)
        linked = [
            Metric(key, float(value), timestamp_ms, round_index, model_id=model_id, run_id=run_id)
            for key, value in metrics.items()
        ]
        if linked:
            self.client.log_batch(run_id, metrics=linked)

    def _version_info(self, model_version, aliases: Sequence[str]) -> VersionInfo:
        tags = dict(model_version.tags or {})
        model_id = model_version.model_id or _model_id_from_source(model_version.source)
        metrics: dict[str, float] = {}
        if model_id is not None:
            metrics = {metric.key: metric.value for metric in self.client.get_logged_model(model_id).metrics or []}
        parent = tags.get("parent_version") or None
        return VersionInfo(
            name=model_version.name,
            version=int(model_version.version),
            aliases=tuple(sorted(aliases)),
            round_index=_int_or_none(tags.get("round")),
            n_labeled=_int_or_none(tags.get("n_labeled")),
            accuracy=metrics.get("accuracy"),
            strategy=tags.get("strategy"),
            parent_version=parent,
            created=datetime.fromtimestamp(model_version.creation_timestamp / 1000, tz=UTC),
            run_id=model_version.run_id,
            source=model_version.source,
            tags=tags,
            metrics=metrics,
        )

    @contextlib.contextmanager
    def _store_errors(self, action: str) -> Iterator[None]:
        """Turn MLflow's errors into a TrackingError naming the store and the action."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            raise TrackingError(f"{action} in MLflow store {self.tracking_uri!r} failed: {exc.message}") from exc


def _check_model_name(name: str) -> None:
    # Names are quoted into MLflow search filters, where a quote would end the string.
    if not name or "'" in name or '"' in name:
        raise ConfigError(f"invalid registered model name {name!r}; use a non-empty name without quotes")


def _model_id_from_source(source: str | None) -> str | None:
    if source and source.startswith("models:/m-"):
        return source.removeprefix("models:/")
    return None


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Set MLflow's process-wide tracking URI for the block, then restore it.

    ``mlflow.set_tracking_uri`` also writes the ``MLFLOW_TRACKING_URI``
    environment variable (MLflow 3.17), which child processes such as Ray
    workers inherit, so the variable is restored as well.
    """
    import mlflow

    previous = mlflow.get_tracking_uri()
    previous_env = os.environ.get(_TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if previous_env is None:
            os.environ.pop(_TRACKING_URI_ENV, None)
        else:
            os.environ[_TRACKING_URI_ENV] = previous_env
