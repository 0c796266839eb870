"""One MLflow run per experiment: parameters, per-round metrics, the final model.

The tracker talks to MLflow through ``MlflowClient`` with an explicit tracking
URI, so it sets no process-wide MLflow state except while logging the model.
A resumed run continues the same MLflow run, whose id the loop keeps in the
label store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from al_ray.errors import TrackingError

__all__ = ["MlflowTracker", "PIP_REQUIREMENTS"]

logger = logging.getLogger(__name__)

# Passed to log_model so MLflow does not spend seconds inferring them.
PIP_REQUIREMENTS = ["scikit-learn>=1.5,<1.10", "numpy>=1.26", "skops"]


class MlflowTracker:
    """Record one active-learning run in MLflow.

    Parameters
    ----------
    tracking_uri : str
        Any MLflow tracking URI; the default store is ``sqlite:///<output>/mlflow.db``.
    experiment : str
        Experiment name; created on first use.
    artifact_location : str or None
        Where a newly created experiment stores artifacts.
    """

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        try:
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (
                found.experiment_id
                if found is not None
                else self.client.create_experiment(experiment, artifact_location=artifact_location)
            )
        except Exception as exc:  # MLflow raises many types for an unreachable store.
            raise TrackingError(
                f"cannot open MLflow tracking store {tracking_uri!r}: {exc}. "
                "Check tracking.uri in the config, or set tracking.enabled: false"
            ) from exc
        self.run_id: str | None = None

    def start(self, run_name: str, params: Mapping[str, Any], run_id: str | None = None) -> str:
        """Start a new run, or continue ``run_id`` after a resume; return the run id."""
        from mlflow.entities import Param

        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
            logger.info("continuing MLflow run %s", run_id)
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name)
        self.run_id = run.info.run_id
        self.client.log_batch(
            self.run_id, params=[Param(key, str(value)[:6000]) for key, value in sorted(params.items())]
        )
        logger.info("MLflow run %s in experiment %s", self.run_id, self.experiment_id)
        return self.run_id

    def log_round(self, round_index: int, metrics: Mapping[str, float]) -> None:
        """Log one round's metrics at step ``round_index``."""
        from mlflow.entities import Metric

        timestamp_ms = int(time.time() * 1000)
        self.client.log_batch(
            self._require_run(),
            metrics=[Metric(key, float(value), timestamp_ms, round_index) for key, value in metrics.items()],
        )

    def log_artifact(self, path: str | Path) -> None:
        self.client.log_artifact(self._require_run(), str(path))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self._require_run(), key, value)

    def log_sklearn_models(self, estimators: Mapping[str, Any], classes: list[str]) -> None:
        """Log fitted scikit-learn estimators as the run's models, one per name, with the class names."""
        import mlflow
        import mlflow.sklearn

        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            with mlflow.start_run(run_id=self._require_run()):
                for name, estimator in estimators.items():
                    mlflow.sklearn.log_model(
                        estimator,
                        name=name,
                        pip_requirements=PIP_REQUIREMENTS,
                        serialization_format="skops",
                        metadata={"classes": classes},
                    )
        finally:
            mlflow.set_tracking_uri(previous)

    def finish(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)

    def _require_run(self) -> str:
        if self.run_id is None:
            raise TrackingError("no MLflow run is active; call start() first")
        return self.run_id
