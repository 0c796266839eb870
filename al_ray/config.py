"""Typed run configuration, validated when loaded.

A config is YAML with the sections below; every key is checked, and an unknown
or mistyped key fails with a suggestion before Ray starts. Paths inside a
config file are resolved relative to that file.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from al_ray.cluster.config import ClusterConfig
from al_ray.config_base import Section
from al_ray.errors import ConfigError
from al_ray.labeling.config import LabelingConfig
from al_ray.monitoring.config import MonitoringConfig
from al_ray.strategies import available_strategies

__all__ = [
    "CommitteeConfig",
    "DataConfig",
    "MemberConfig",
    "LabelsConfig",
    "LoopConfig",
    "ModelConfig",
    "RayConfig",
    "RunConfig",
    "ScoringConfig",
    "StabilizingConfig",
    "StrategyConfig",
    "TrackingConfig",
    "load_config",
]


_Section = Section


class DataConfig(_Section):
    """The data source and its split into initial labeled set, pool and test set."""

    dataset: str | None = Field(None, description="name of a shipped dataset, e.g. mnist_test")
    path: str | None = Field(None, description="the user's own CSV, Parquet or NPZ file")
    label_column: str | None = Field(None, description="label column of `path`")
    row_id_column: str | None = Field(None, description="integer id column of `path`; default: row number")
    feature_columns: list[str] | None = Field(None, description="feature columns of `path`; default: all others")
    initial_labeled: int = Field(
        20, ge=0, description="rows labeled before round 1, stratified by class; 0 for a cold start"
    )
    test_size: float = Field(0.2, gt=0, description="held-out rows: a count (>= 1) or a fraction in (0, 1)")
    pool_size: int | None = Field(None, ge=1, description="cap on the unlabeled pool; default: all rows left")

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        if (self.dataset is None) == (self.path is None):
            raise ValueError("set exactly one of data.dataset (a shipped dataset) or data.path (your file)")
        if self.path is not None and not self.label_column:
            raise ValueError("data.path needs data.label_column, the name of the label column")
        return self


class MemberConfig(_Section):
    """One committee member's estimator."""

    estimator: str = Field(..., description="short name or dotted import path")
    params: dict[str, Any] = Field(default_factory=dict)


class CommitteeConfig(_Section):
    """A committee retrained on Ray actors, for query-by-committee strategies."""

    size: int | None = Field(
        None, ge=2, description="bagging: this many copies of model.estimator, each on its own bootstrap sample"
    )
    members: list[MemberConfig] | None = Field(None, description="or: one entry per member, estimators may differ")
    bootstrap: bool = Field(True, description="train each member on a bootstrap sample of the labeled set")
    actor_num_cpus: float = Field(0.2, gt=0, description="CPUs reserved per member actor")

    @model_validator(mode="after")
    def _one_form(self) -> "CommitteeConfig":
        if (self.size is None) == (self.members is None):
            raise ValueError("set exactly one of model.committee.size (bagging) or model.committee.members")
        if self.members is not None and len(self.members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(self.members)}; add members")
        return self

    @property
    def n_members(self) -> int:
        return self.size if self.size is not None else len(self.members or [])


class TorchTrainConfig(_Section):
    """Retraining a torch model with Ray Train, each round."""

    epochs: int = Field(20, ge=1, description="maximum epochs per round")
    batch_size: int = Field(64, ge=1, description="rows per optimizer step, per worker")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay")
    patience: int = Field(3, ge=1, description="stop after this many epochs without a lower validation loss")
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="share of the labeled set held out for early stopping"
    )
    warm_start: bool = Field(True, description="start from the previous round's weights, or from fresh ones")
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="balanced: weight the loss by n_labeled / (n_classes * class count)"
    )
    num_workers: int = Field(2, ge=1, description="Ray Train workers (data-parallel)")
    use_gpu: bool = Field(False, description="one GPU per worker; the cluster must have them")
    cpus_per_worker: float = Field(0.5, gt=0, description="CPUs reserved per worker")
    max_failures: int = Field(1, ge=0, description="worker failures retried from the latest checkpoint")
    mc_samples: int = Field(
        20, ge=2, description="MC-dropout passes per row for committee strategies (BALD, variation ratios)"
    )


class ModelConfig(_Section):
    """The classifier retrained each round."""

    kind: Literal["sklearn", "torch"] = Field("sklearn", description="sklearn estimator, or torch network")
    estimator: str = Field("logistic_regression", description="kind sklearn: short name or dotted import path")
    architecture: str | None = Field(None, description="kind torch: mlp or cnn")
    params: dict[str, Any] = Field(default_factory=dict, description="estimator or architecture parameters")
    standardize: bool = Field(False, description="scale features to zero mean, unit variance first")
    fit_on: Literal["ray", "driver"] = Field(
        "ray", description="ray: retrain as a Ray task (sklearn) or with Ray Train (torch); driver: in-process"
    )
    fit_num_cpus: float = Field(1.0, gt=0, description="kind sklearn, fit_on ray: CPUs reserved for the fit task")
    committee: CommitteeConfig | None = Field(None, description="train a committee instead of one model")
    train: TorchTrainConfig = Field(default_factory=TorchTrainConfig, description="kind torch: Ray Train settings")

    @model_validator(mode="after")
    def _kind_fields(self) -> "ModelConfig":
        if self.kind == "torch":
            if self.architecture is None:
                raise ValueError("model.kind torch needs model.architecture: mlp or cnn")
            if self.estimator != ModelConfig.model_fields["estimator"].default:
                raise ValueError(
                    "model.estimator is for kind sklearn; remove it, a torch model takes model.architecture"
                )
            if self.standardize:
                raise ValueError(
                    "model.standardize is for kind sklearn; remove it, a torch model takes the features as they are"
                )
            if self.committee is not None:
                raise ValueError(
                    "model.committee is for kind sklearn; a torch model's committee is MC dropout "
                    "(set model.train.mc_samples)"
                )
        else:
            if self.architecture is not None:
                raise ValueError("model.architecture is for kind torch; set model.kind: torch, or remove it")
            if self.train != TorchTrainConfig():
                raise ValueError("model.train is for kind torch; remove it, or set model.kind: torch")
        return self


class StrategyConfig(_Section):
    """The query strategy and its parameters."""

    name: str = "margin"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in available_strategies():
            raise ValueError(f"unknown strategy; choose one of {', '.join(available_strategies())}")
        return name


class StabilizingConfig(_Section):
    """Stabilizing predictions (Bloodgood and Vijay-Shanker, CoNLL 2009).

    The run stops once Cohen's kappa between the predictions of successive
    models on an unlabeled stop set stays at or above ``threshold`` for
    ``window`` rounds in a row.
    """

    threshold: float = Field(0.99, gt=0, le=1, description="minimum kappa between successive models")
    window: int = Field(3, ge=1, description="rounds in a row that must reach the threshold")
    stop_set_size: int = Field(1000, ge=10, description="pool rows in the stop set, sampled once from the seed")


class LoopConfig(_Section):
    """Round count, batch size and stopping criteria."""

    rounds: int = Field(10, ge=0, description="query rounds after the initial model; 0 trains the initial model only")
    batch_size: int = Field(50, gt=0, description="rows queried per round")
    label_budget: int | None = Field(None, ge=1, description="stop once this many labels are stored")
    collect_timeout_s: float = Field(600.0, gt=0, description="wait for answers at most this long per round")
    target_accuracy: float | None = Field(
        None, gt=0, le=1, description="stop once test accuracy reaches this value"
    )
    stabilizing: StabilizingConfig | None = Field(
        None, description="stop once successive models agree on a held-out stop set"
    )


class ScoringConfig(_Section):
    """Scoring path and actor-pool settings for the unlabeled pool."""

    mode: Literal["auto", "local", "ray"] = Field(
        "auto", description="local: in the driver; ray: Ray Data actor pool; auto: by pool size"
    )
    local_max_rows: int = Field(
        2_000_000,
        ge=0,
        description="auto mode scores pools up to this many rows in-process (measured: benchmarks/RESULTS.md)",
    )
    batch_rows: int = Field(4096, gt=0, description="rows per scoring batch")
    num_actors: int = Field(2, ge=1, description="scoring actors in the Ray Data pool")
    actor_num_cpus: float = Field(
        0.5, gt=0, description="CPUs reserved per scoring actor; below 1 so Ray Data tasks can still run"
    )


class RayConfig(_Section):
    """How to reach Ray."""

    address: str | None = Field(None, description="cluster address; default: start a local Ray")
    num_cpus: int | None = Field(None, ge=1, description="logical CPUs for a local Ray")
    object_store_memory_mb: int | None = Field(None, ge=64)


class LabelsConfig(_Section):
    """The label store and the label source."""

    store: str | None = Field(None, description="SQLAlchemy URL or file; default: OUTPUT/labels.db")
    source: Literal["oracle", "human"] = Field(
        "oracle", description="oracle: simulated annotator from ground truth; human: people through `al-ray label serve`"
    )


class TrackingConfig(_Section):
    """MLflow tracking."""

    enabled: bool = True
    uri: str | None = Field(None, description="MLflow tracking URI; default: sqlite in the output folder")
    experiment: str | None = Field(None, description="experiment name; default: al_ray-<name>")
    log_model: bool = Field(True, description="log the final model as an MLflow model")
    register_models: bool = Field(True, description="register every round's model as a version in the MLflow registry")
    registered_model: str | None = Field(
        None, description="registered model name; default: <name>-<strategy>", pattern=r"^[A-Za-z0-9_.-]+$"
    )


class RolloutConfig(_Section):
    """The canary rollout plan: the challenger's traffic share at each step."""

    steps: list[float] = Field(
        default_factory=lambda: [0.05, 0.25, 0.5, 1.0],
        description="challenger weights in (0, 1], increasing; the last must be 1 (full promotion)",
    )
    hold_s: float = Field(60.0, ge=0, description="seconds each step lasts before it is judged")
    min_requests: int = Field(
        100, ge=1, description="challenger requests a step needs before it is judged; a step waits for them"
    )
    max_duration_s: float | None = Field(
        600.0, gt=0, description="roll back a rollout still running after this long; null waits for ever"
    )

    @field_validator("steps")
    @classmethod
    def _increasing_to_one(cls, steps: list[float]) -> list[float]:
        if not steps:
            raise ValueError("needs at least one step, e.g. [0.1, 1.0]")
        if any(not 0 < step <= 1 for step in steps):
            raise ValueError(f"every step is a challenger weight in (0, 1], got {steps}")
        if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
            raise ValueError(f"steps must increase, got {steps}")
        if steps[-1] != 1:
            raise ValueError(f"the last step must be 1.0 (full promotion), got {steps[-1]}")
        return steps


class GuardsConfig(_Section):
    """Limits the challenger must keep at every rollout step, or it is rolled back."""

    max_error_rate: float = Field(0.01, ge=0, le=1, description="share of the challenger's requests that failed")
    max_p95_latency_ms: float | None = Field(None, gt=0, description="absolute p95 latency limit of the challenger")
    max_p95_latency_ratio: float | None = Field(
        2.0, gt=0, description="challenger p95 latency over champion p95 latency"
    )
    # A better model disagrees with the champion on the rows the champion gets
    # wrong, so this guard only catches a broken challenger: one near chance
    # agreement (1 / n_classes) or one that reads the features differently.
    min_agreement: float | None = Field(
        0.5, ge=0, le=1, description="share of compared rows where the challenger predicts the champion's class"
    )
    min_accuracy_delta: float | None = Field(
        -0.02, ge=-1, le=1, description="challenger minus champion accuracy on labeled feedback, when there is some"
    )
    min_feedback_labels: int = Field(50, ge=1, description="labeled feedback rows needed before accuracy counts")


class FeedbackConfig(_Section):
    """The store of served rows with high uncertainty, which the next round adds to its pool."""

    path: str | None = Field(None, description="SQLite file of uncertain served rows; default: none kept")
    uncertainty_threshold: float = Field(
        0.5, ge=0, le=1, description="rows whose margin uncertainty (1 - p1 + p2) is at least this are kept"
    )


class ServingConfig(_Section):
    """Ray Serve: champion and challenger behind a weighted router, and the canary rollout."""

    host: str = Field("127.0.0.1", description="address the HTTP proxy binds")
    port: int = Field(8000, ge=1, le=65535)
    route_prefix: str = Field("/", pattern=r"^/")
    weights: dict[Literal["champion", "challenger"], float] = Field(
        default_factory=lambda: {"champion": 1.0, "challenger": 0.0},
        description="initial traffic split; each in [0, 1], summing to 1",
    )
    sticky: bool = Field(False, description="route by the request's key: the same key always reaches the same version")
    shadow: bool = Field(False, description="the challenger scores a copy of every request, and the champion returns the response")
    max_rows: int = Field(1024, ge=1, description="rows per request")
    max_body_bytes: int = Field(4_000_000, ge=1, description="request body size limit")
    replica_num_cpus: float = Field(0.1, gt=0, description="CPUs per replica; Serve's default of 1 hangs on 2 CPUs")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    deploy_each_round: bool = Field(
        False, description="deploy each round's new version as the challenger and run the rollout"
    )

    @field_validator("weights")
    @classmethod
    def _split(cls, weights: dict[str, float]) -> dict[str, float]:
        if set(weights) != {"champion", "challenger"}:
            raise ValueError(f"give both champion and challenger weights, got {sorted(weights)}")
        if any(not 0 <= weight <= 1 for weight in weights.values()):
            raise ValueError(f"weights must be in [0, 1], got {weights}")
        if abs(sum(weights.values()) - 1) > 1e-9:
            raise ValueError(f"weights must sum to 1, got {weights} (sum {sum(weights.values()):g})")
        return weights


class RunConfig(_Section):
    """A whole active-learning run."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(0, ge=0, description="the root seed every random choice derives from")
    output: str | None = Field(None, description="output folder; default: runs/<name>/<strategy>")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    labeling: LabelingConfig = Field(default_factory=LabelingConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @model_validator(mode="after")
    def _deploy_needs_registry(self) -> "RunConfig":
        if self.serving.deploy_each_round and not (self.tracking.enabled and self.tracking.register_models):
            raise ValueError(
                "serving.deploy_each_round serves registered versions; set tracking.enabled and "
                "tracking.register_models to true, or turn deploy_each_round off"
            )
        return self

    def with_overrides(self, **changes: Any) -> "RunConfig":
        """Return a copy with dotted keys replaced, e.g. ``{"loop.rounds": 3}``, revalidated."""
        raw = self.model_dump()
        for dotted, value in changes.items():
            section = raw
            *parents, leaf = dotted.split(".")
            for parent in parents:
                section = section[parent]
            section[leaf] = value
        return parse_config(raw, source="command-line overrides")


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent: Any = model
        for part in error["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            parent = field.annotation if field is not None else None
        allowed = sorted(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {location!r}{hint} Allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"missing required key {location!r}"
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(error.get("input"), dict) or repr(error.get("input")) in message:
        # A whole section failed a cross-field check; its message names the keys.
        return f"{location}: {message}"
    return f"{location}: {message} (got {error.get('input')!r})"


def parse_config(raw: Any, *, source: str = "config") -> RunConfig:
    """Validate a parsed YAML mapping into a :class:`RunConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(error, RunConfig) for error in exc.errors())
        raise ConfigError(f"invalid {source}:\n  {problems}") from None


def load_config(path: str | Path) -> RunConfig:
    """Load and validate a YAML config; relative data paths resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path.resolve()}; pass the path of a YAML file such as configs/mnist.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    config = parse_config(raw, source=f"config {path}")
    if config.data.path is not None and "://" not in config.data.path and not Path(config.data.path).is_absolute():
        config = config.with_overrides(**{"data.path": str((path.parent / config.data.path).resolve())})
    return config
