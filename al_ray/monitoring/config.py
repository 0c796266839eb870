"""Config section for drift, outliers, triggers, the watcher, metrics and the audit log."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from al_ray.config_base import Section
from al_ray.monitoring.audit_config import AuditConfig, MetricsConfig
from al_ray.monitoring.watch_config import TriggersConfig, WatchConfig

__all__ = ["DriftConfig", "MonitoringConfig", "OutlierConfig", "WindowConfig"]


class WindowConfig(Section):
    """Windows that cut live traffic into parts, each compared with the reference."""

    kind: Literal["count", "time"] = Field(
        "count", description="count: a window every `size` rows; time: a window every `seconds` of row time"
    )
    size: int = Field(1000, ge=1, description="kind count: rows per window")
    step: int | None = Field(
        None, ge=1, description="kind count: rows between window starts; default: size (windows do not overlap)"
    )
    seconds: float | None = Field(None, gt=0, description="kind time: window length in seconds")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> WindowConfig:
        if self.kind == "time" and self.seconds is None:
            raise ValueError("window kind time needs window.seconds, the window length in seconds")
        if self.kind == "count" and self.seconds is not None:
            raise ValueError("window.seconds is for kind time; remove it, or set window.kind: time")
        if self.kind == "time" and self.step is not None:
            raise ValueError("window.step is for kind count; time windows do not overlap, so remove it")
        return self


class DriftConfig(Section):
    """Per-feature drift tests of a live window against a reference window."""

    numeric_test: Literal["ks", "psi"] = Field(
        "ks", description="numeric features: ks (two-sample Kolmogorov-Smirnov) or psi (population stability index)"
    )
    categorical_test: Literal["chi2", "psi"] = Field(
        "chi2", description="categorical features: chi2 (chi-squared test of homogeneity) or psi"
    )
    categorical_features: list[str] | None = Field(
        None,
        description="features tested as categories; default: features whose reference values are "
        "integers with at most max_categories distinct values",
    )
    max_categories: int = Field(
        10, ge=1, description="auto-detection: an integer-valued feature with at most this many values is categorical"
    )
    exclude_features: list[str] = Field(
        default_factory=list, description="features left out of the tests, e.g. a timestamp that always moves"
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="significance level of the feature tests, after the correction"
    )
    correction: Literal["holm", "bonferroni", "fdr_bh"] = Field(
        "holm",
        description="correction for testing many features: holm or bonferroni (family-wise error), "
        "fdr_bh (Benjamini-Hochberg false discovery rate)",
    )
    psi_bins: int = Field(10, ge=2, description="quantile bins of the reference for the PSI of a numeric feature")
    psi_threshold: float = Field(
        0.25, gt=0, description="a feature tested with psi drifted at this PSI or above (0.1 moderate, 0.25 major)"
    )
    min_drifted_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="the drift check flags a window as drifted (the verdict of drift reports, the "
        "drift_detected metric and the AlRayDriftHigh alert) when at least one feature drifted and at least "
        "this share of the tested features did. It starts no round: "
        "monitoring.triggers.drift.min_drifted_share does",
    )
    prediction_alpha: float = Field(
        0.05, gt=0, lt=1, description="significance level of the chi-squared test on the predicted class shares"
    )
    uncertainty_quantiles: list[float] = Field(
        default_factory=lambda: [0.9, 0.99],
        description="upper quantiles of live uncertainty reported beside its mean, each in (0, 1)",
    )
    window: WindowConfig = Field(default_factory=WindowConfig)
    min_window_rows: int = Field(
        50, ge=2, description="a window with fewer rows is rejected as too small to test"
    )
    nan_policy: Literal["raise", "drop"] = Field(
        "raise", description="live rows with NaN or infinite values: raise an error, or drop and count them"
    )

    @field_validator("uncertainty_quantiles")
    @classmethod
    def _quantiles_in_range(cls, quantiles: list[float]) -> list[float]:
        if any(not 0 < quantile < 1 for quantile in quantiles):
            raise ValueError(f"every quantile must be in (0, 1), got {quantiles}; e.g. [0.9, 0.99]")
        return sorted(set(quantiles))

    @model_validator(mode="after")
    def _disjoint_lists(self) -> DriftConfig:
        both = sorted(set(self.categorical_features or ()) & set(self.exclude_features))
        if both:
            raise ValueError(
                f"features {both} are both categorical_features and exclude_features; remove them from one list"
            )
        return self


class OutlierConfig(Section):
    """The outlier guard: pool rows far outside the data are held back from the query and counted.

    An isolation forest (Liu, Ting and Zhou, ICDM 2008) is fit each round on
    the features of the rows queried so far plus a seeded sample of the
    dataset's pool. A pool row is held back when its anomaly score, in (0, 1]
    with values near 1 for rows isolated by few splits, passes the threshold.
    """

    enabled: bool = Field(False, description="hold back outliers from every query round")
    score_threshold: float = Field(
        0.6,
        gt=0,
        lt=1,
        description="hold back rows with an anomaly score above this; ignored when contamination is set",
    )
    contamination: float | None = Field(
        None,
        gt=0,
        lt=0.5,
        description="instead of score_threshold: the threshold is the score above which this share of the fit rows lie",
    )
    n_estimators: int = Field(100, ge=1, description="trees in the isolation forest")
    max_samples: int = Field(256, ge=2, description="rows drawn to build each tree")
    fit_on: Literal["labeled", "labeled+reference"] = Field(
        "labeled+reference",
        description="labeled: the rows queried so far; labeled+reference: those plus a seeded pool sample",
    )
    reference_rows: int = Field(
        2000, ge=1, description="rows of the dataset's own pool sampled as the reference, never served rows"
    )
    min_fit_rows: int = Field(
        20, ge=2, description="with fewer fit rows the round holds nothing back and logs a warning"
    )
    max_share_held_back: float = Field(
        0.1,
        gt=0,
        le=1,
        description="hold back at most this share of the rows that could be queried, the most anomalous "
        "first; reaching it logs a warning, because the data may have drifted",
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> OutlierConfig:
        if self.contamination is not None and "score_threshold" in self.model_fields_set:
            raise ValueError(
                "set either score_threshold or contamination, not both; contamination derives the threshold "
                "from the fit rows"
            )
        return self


class MonitoringConfig(Section):
    """Settings for drift, the outlier guard, triggers, the watcher, metrics and the audit log."""

    drift: DriftConfig = Field(default_factory=DriftConfig)
    outliers: OutlierConfig = Field(default_factory=OutlierConfig)
    triggers: TriggersConfig = Field(default_factory=TriggersConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
