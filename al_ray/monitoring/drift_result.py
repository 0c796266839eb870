"""The outcome of one drift check: per-feature tests, prediction and uncertainty drift."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DriftResult", "FeatureDrift", "PredictionDrift", "UncertaintyDrift"]


def _number(value: float | None) -> float | None:
    # JSON has no NaN or infinity; a non-finite figure is reported as missing.
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class FeatureDrift:
    """The drift test of one feature."""

    name: str
    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2", "psi"]
    statistic: float
    """KS statistic D in [0, 1], chi-squared statistic, or the PSI when ``test`` is psi."""

    p_value: float | None
    """Raw p-value; None for a psi test, which has none."""

    p_value_adjusted: float | None
    """p-value after the correction for testing many features; None for a psi test."""

    psi: float
    """Population stability index over the reference's bins, computed for every test."""

    drifted: bool
    constant_reference: bool
    """True when the feature has one value in the whole reference."""

    bin_labels: tuple[str, ...] = ()
    reference_shares: tuple[float, ...] = ()
    window_shares: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the test as JSON-ready values."""
        return {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": _number(self.statistic),
            "p_value": _number(self.p_value),
            "p_value_adjusted": _number(self.p_value_adjusted),
            "psi": _number(self.psi),
            "drifted": self.drifted,
            "constant_reference": self.constant_reference,
            "bins": list(self.bin_labels),
            "reference_shares": [round(share, 6) for share in self.reference_shares],
            "window_shares": [round(share, 6) for share in self.window_shares],
        }


@dataclass(frozen=True)
class PredictionDrift:
    """A chi-squared test of the predicted class shares in the window against the reference."""

    statistic: float
    p_value: float
    drifted: bool
    classes: tuple[str, ...]
    reference_shares: tuple[float, ...]
    window_shares: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the test as JSON-ready values."""
        return {
            "statistic": _number(self.statistic),
            "p_value": _number(self.p_value),
            "drifted": self.drifted,
            "classes": list(self.classes),
            "reference_shares": [round(share, 6) for share in self.reference_shares],
            "window_shares": [round(share, 6) for share in self.window_shares],
        }


@dataclass(frozen=True)
class UncertaintyDrift:
    """Mean and upper quantiles of the window's uncertainty, beside the reference's when known."""

    mean: float
    quantiles: dict[float, float]
    """Window uncertainty at each configured quantile, e.g. ``{0.9: ..., 0.99: ...}``."""

    reference_mean: float | None = None
    reference_quantiles: dict[float, float] | None = None

    @property
    def q90(self) -> float | None:
        """Window uncertainty at the 0.9 quantile, when that quantile is configured."""
        return self.quantiles.get(0.9)

    @property
    def q99(self) -> float | None:
        """Window uncertainty at the 0.99 quantile, when that quantile is configured."""
        return self.quantiles.get(0.99)

    @property
    def mean_increase(self) -> float | None:
        """Window mean minus reference mean; None without a reference."""
        return None if self.reference_mean is None else self.mean - self.reference_mean

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready values, quantiles keyed by their text, e.g. ``"0.9"``."""
        reference = self.reference_quantiles or {}
        return {
            "mean": _number(self.mean),
            "reference_mean": _number(self.reference_mean),
            "mean_increase": _number(self.mean_increase),
            "quantiles": {f"{q:g}": _number(value) for q, value in self.quantiles.items()},
            "reference_quantiles": {f"{q:g}": _number(value) for q, value in reference.items()},
        }


@dataclass(frozen=True)
class DriftResult:
    """The comparison of one live window with the reference.

    ``drifted`` is true when the feature tests find drift (at least one
    feature after the correction, and at least ``min_drifted_share`` of the
    tested features) or when the predicted class shares changed. Uncertainty
    figures are reported but never decide ``drifted``: trigger policies put
    their own thresholds on them.
    """

    features: tuple[FeatureDrift, ...]
    n_reference: int
    n_window: int
    alpha: float
    correction: str
    min_drifted_share: float
    prediction_drift: PredictionDrift | None = None
    uncertainty_drift: UncertaintyDrift | None = None
    rows_dropped: int = 0
    """Live rows left out for NaN or infinite values (``nan_policy: drop``)."""

    label: str = ""
    """Free text naming the window, e.g. ``"rows 17424-18423"``."""

    excluded_features: tuple[str, ...] = field(default=())

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the features that drifted, in feature order."""
        return tuple(feature.name for feature in self.features if feature.drifted)

    @property
    def drift_share(self) -> float:
        """Share of the tested features that drifted, in [0, 1]."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def feature_drifted(self) -> bool:
        """True when the feature tests find drift in the window."""
        return bool(self.drifted_features) and self.drift_share >= self.min_drifted_share

    @property
    def drifted(self) -> bool:
        """True when the features or the predicted class shares drifted."""
        prediction = self.prediction_drift is not None and self.prediction_drift.drifted
        return self.feature_drifted or prediction

    @property
    def score(self) -> float:
        """Largest PSI over the tested features: one figure of how far the window moved, 0 when none moved."""
        return max((feature.psi for feature in self.features), default=0.0)

    def ranked_features(self) -> list[FeatureDrift]:
        """Return the features from most to least drifted: drifted first, then by p-value, then by PSI."""

        def key(feature: FeatureDrift) -> tuple[bool, float, float]:
            p_value = feature.p_value_adjusted if feature.p_value_adjusted is not None else 1.0
            return (not feature.drifted, p_value, -feature.psi)

        return sorted(self.features, key=key)

    def summary(self) -> str:
        """Return one line for logs: the decision and the figures behind it."""
        names = ",".join(self.drifted_features) or "none"
        return (
            f"drifted={self.drifted} drift_share={self.drift_share:.3f} score={self.score:.3f} "
            f"drifted_features={names} n_window={self.n_window}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the whole result as JSON-ready values."""
        return {
            "label": self.label,
            "drifted": self.drifted,
            "feature_drifted": self.feature_drifted,
            "drift_share": self.drift_share,
            "score": _number(self.score),
            "drifted_features": list(self.drifted_features),
            "n_reference": self.n_reference,
            "n_window": self.n_window,
            "rows_dropped": self.rows_dropped,
            "alpha": self.alpha,
            "correction": self.correction,
            "min_drifted_share": self.min_drifted_share,
            "excluded_features": list(self.excluded_features),
            "features": [feature.to_dict() for feature in self.features],
            "prediction_drift": None if self.prediction_drift is None else self.prediction_drift.to_dict(),
            "uncertainty_drift": None if self.uncertainty_drift is None else self.uncertainty_drift.to_dict(),
        }
