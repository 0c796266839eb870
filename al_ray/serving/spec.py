"""Which model a live version serves, and how a replica loads it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from al_ray.errors import ConfigError
from al_ray.serving.errors import ServingError

__all__ = ["VersionSpec", "feature_count", "load_classifier"]

# Labels become part of Serve application names, so they stay within the
# characters that are safe there and in Prometheus label values.
_LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class VersionSpec:
    """A model version to serve: a saved round model file or a registered MLflow version.

    Give either ``model_path`` or all of ``tracking_uri``, ``name`` and
    ``version``.

    Attributes
    ----------
    label
        The version's name in responses, stats and metrics, such as ``"3"``:
        1 to 64 letters, digits, ``_``, ``.`` or ``-``.
    model_path
        A classifier saved with :func:`al_ray.loop.model_io.save_model`.
    tracking_uri, name, version
        An MLflow registry, a registered model name and a version number or
        alias, loaded with :meth:`al_ray.tracking.registry.ModelRegistry.load`.
    """

    label: str
    model_path: str | None = None
    tracking_uri: str | None = None
    name: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not _LABEL_PATTERN.match(self.label):
            raise ConfigError(
                f"invalid version label {self.label!r}; use 1 to 64 letters, digits, '_', '.' or '-', "
                "such as the registry version number '3'"
            )
        if self.model_path is not None:
            object.__setattr__(self, "model_path", os.fspath(self.model_path))
        if self.version is not None:
            object.__setattr__(self, "version", str(self.version))
        registry_fields = (self.tracking_uri, self.name, self.version)
        from_registry = all(value is not None for value in registry_fields)
        if any(value is not None for value in registry_fields) and not from_registry:
            raise ConfigError(
                f"version {self.label}: a registered model needs tracking_uri, name and version together, "
                f"got tracking_uri={self.tracking_uri!r}, name={self.name!r}, version={self.version!r}"
            )
        if (self.model_path is None) == (not from_registry):
            raise ConfigError(
                f"version {self.label}: give either model_path or tracking_uri, name and version, "
                "not both and not neither"
            )

    @property
    def source(self) -> str:
        """Where the model comes from, for messages: a file path or ``models:/name/version``."""
        if self.model_path is not None:
            return self.model_path
        return f"models:/{self.name}/{self.version} at {self.tracking_uri}"


def load_classifier(spec: VersionSpec) -> Any:
    """Load the classifier that ``spec`` names and check that it can serve.

    Raises
    ------
    ServingError
        If the model file is missing or cannot be unpickled, or the object
        has no ``classes`` or ``predict_proba``.
    TrackingError
        If the MLflow registry cannot be reached or has no such version.
    """
    if spec.model_path is not None:
        model = _load_file(spec.label, Path(spec.model_path))
    else:
        from al_ray.tracking.registry import ModelRegistry

        model = ModelRegistry(spec.tracking_uri, existing=True).load(spec.name, spec.version)
    if not callable(getattr(model, "predict_proba", None)) or not getattr(model, "classes", None):
        raise ServingError(
            f"version {spec.label} ({spec.source}) is a {type(model).__name__}, which has no "
            "predict_proba or classes; serve a classifier saved by the active-learning loop"
        )
    return model


def _load_file(label: str, path: Path) -> Any:
    import cloudpickle

    if not path.is_file():
        raise ServingError(f"model file {path} of version {label} not found; check the path or the round's output folder")
    try:
        with open(path, "rb") as stream:
            return cloudpickle.load(stream)
    # Unpickling a damaged or foreign file can raise nearly any exception type
    # (UnpicklingError, EOFError, AttributeError, ModuleNotFoundError, ...).
    except Exception as error:
        raise ServingError(
            f"cannot load model file {path} of version {label}: {type(error).__name__}: {error}; "
            "the file is damaged or was saved by another version of al_ray or its libraries"
        ) from error


def feature_count(model: Any) -> int | None:
    """Return the number of features ``model`` expects, or None when the model does not state it.

    A torch classifier states ``n_features``. A scikit-learn classifier or a
    committee exposes it through its fitted estimators' ``n_features_in_``.
    A prior classifier takes any number of features.
    """
    count = getattr(model, "n_features", None)
    if isinstance(count, int):
        return count
    fitted = getattr(model, "fitted_estimators", None)
    if callable(fitted):
        for estimator in fitted().values():
            count = getattr(estimator, "n_features_in_", None)
            if count is not None:
                return int(count)
    return None
