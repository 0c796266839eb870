"""Drift of live windows against a reference: per-feature tests, predictions and uncertainty.

The reference is the data the live model was trained on. Each numeric
feature is compared with a two-sample Kolmogorov-Smirnov test (or the PSI),
each categorical one with a chi-squared test of homogeneity (or the PSI), and
the p-values of all features are corrected together for testing many at
once. Predicted class shares get their own chi-squared test, and the
uncertainty of the live model is summarised by its mean and upper quantiles.

Example::

    detector = DriftDetector(train_features, feature_names, config.monitoring.drift)
    result = detector.check(live_features)
    if result.drifted:
        print(result.summary())
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from al_ray.data.types import format_ids
from al_ray.monitoring.config import DriftConfig
from al_ray.monitoring.drift_report import write_report
from al_ray.monitoring.drift_result import (
    DriftResult,
    FeatureDrift,
    PredictionDrift,
    UncertaintyDrift,
)
from al_ray.monitoring.drift_stats import (
    Bins,
    adjust_p_values,
    categorical_bins,
    chi2_homogeneity,
    ks_two_sample,
    numeric_bins,
    population_stability_index,
)
from al_ray.monitoring.errors import DriftError
from al_ray.monitoring.windows import Window

# write_report is re-exported so that callers find the whole drift API here.
__all__ = ["DriftDetector", "DriftResult", "write_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _FeatureSpec:
    """Values the reference fixes for one tested feature."""

    index: int
    name: str
    kind: str
    test: str
    reference: np.ndarray
    bins: Bins
    reference_counts: np.ndarray
    constant: bool


def _is_categorical(column: np.ndarray, max_categories: int) -> bool:
    values = np.unique(column)
    return values.size <= max_categories and bool(np.all(values == np.round(values)))


class DriftDetector:
    """Compare live windows with a reference window.

    Parameters
    ----------
    reference : ndarray of shape (n_rows, n_features)
        Rows the live model was trained on, numeric and finite, at least 2 rows.
    feature_names : sequence of str
        Name of each reference column, unique.
    config : DriftConfig
        Tests, significance levels, correction and window limits.
    reference_predictions : array of shape (n_rows,) or (n_rows, n_classes), optional
        The live model's predicted classes (or class probabilities, reduced to
        their argmax) on the reference. Needed to test prediction drift.
    reference_uncertainty : array of shape (n_rows,), optional
        The live model's uncertainty on the reference, to compare the
        window's uncertainty against.
    warn_constant : bool, default True
        Log a warning for each feature that is constant in the reference.
        A caller that builds many detectors can turn it off and report
        :attr:`constant_features` itself.

    Raises
    ------
    DriftError
        If the reference is empty, not 2-D, not finite, or its names or the
        config's feature lists do not match its columns.

    Notes
    -----
    A feature that is constant in the reference cannot spread over bins, and
    a KS test against it measures only the share of window values that differ
    from the constant. A window that is constant at the same value reports no
    drift (statistic 0, p-value 1). A window that varies where the reference
    did not is reported as drift, because the feature did change. Such a
    feature is marked ``constant_reference`` and, with ``warn_constant``,
    logged once at construction.
    """

    def __init__(
        self,
        reference: np.ndarray,
        feature_names: Sequence[str],
        config: DriftConfig,
        *,
        reference_predictions: np.ndarray | None = None,
        reference_uncertainty: np.ndarray | None = None,
        warn_constant: bool = True,
    ) -> None:
        self.config = config
        self._warn_constant = warn_constant
        matrix = np.asarray(reference)
        if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 1:
            raise DriftError(
                f"the reference must be a 2-D array of at least 2 rows and 1 feature, got shape {matrix.shape}."
            )
        if matrix.dtype.kind not in "biuf":
            raise DriftError(f"the reference must be numeric, got dtype {matrix.dtype}.")
        # Live values are rounded to the reference's precision before testing, so
        # a float64 copy of a float32 constant is not mistaken for a change.
        self._dtype = matrix.dtype if matrix.dtype.kind == "f" else np.dtype(np.float64)
        reference64 = matrix.astype(np.float64)
        _check_finite(reference64, "the reference")
        self.feature_names = _checked_names(feature_names, reference64.shape[1])
        self.n_reference = int(reference64.shape[0])
        self._specs = self._build_specs(reference64)
        self._reference_classes, self._reference_class_counts = self._class_counts(reference_predictions)
        self._reference_uncertainty = self._checked_uncertainty(reference_uncertainty, self.n_reference, "reference")

    # Construction.

    def _build_specs(self, reference: np.ndarray) -> list[_FeatureSpec]:
        config = self.config
        _check_known(config.exclude_features, self.feature_names, "exclude_features")
        _check_known(config.categorical_features or [], self.feature_names, "categorical_features")
        excluded = set(config.exclude_features)
        specs = []
        for index, name in enumerate(self.feature_names):
            if name in excluded:
                continue
            column = reference[:, index]
            if config.categorical_features is not None:
                categorical = name in config.categorical_features
            else:
                categorical = _is_categorical(column, config.max_categories)
            bins = categorical_bins(column) if categorical else numeric_bins(column, config.psi_bins)
            constant = bool(np.all(column == column[0]))
            if constant and self._warn_constant:
                logger.warning(
                    "feature %r is constant (%g) in the reference; a window in which it varies counts as drift",
                    name, column[0],
                )
            specs.append(
                _FeatureSpec(
                    index=index,
                    name=name,
                    kind="categorical" if categorical else "numeric",
                    test=config.categorical_test if categorical else config.numeric_test,
                    reference=np.sort(column),
                    bins=bins,
                    reference_counts=bins.counts(column),
                    constant=constant,
                )
            )
        if not specs:
            raise DriftError(
                f"every feature is in exclude_features ({', '.join(self.feature_names)}); leave at least one to test."
            )
        return specs

    @property
    def constant_features(self) -> dict[str, float]:
        """Tested features that are constant in the reference, with their value, in feature order."""
        return {spec.name: float(spec.reference[0]) for spec in self._specs if spec.constant}

    def _class_counts(self, predictions: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        if predictions is None:
            return None, None
        labels = _as_labels(predictions, self.n_reference, "reference_predictions")
        classes, counts = np.unique(labels, return_counts=True)
        return classes, counts

    @staticmethod
    def _checked_uncertainty(values: np.ndarray | None, n_rows: int, source: str) -> np.ndarray | None:
        if values is None:
            return None
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (n_rows,):
            raise DriftError(f"the {source} uncertainty must have shape ({n_rows},), one value per row, got {array.shape}.")
        if not np.all(np.isfinite(array)):
            raise DriftError(f"the {source} uncertainty contains {int((~np.isfinite(array)).sum())} NaN or infinite values.")
        return array

    @property
    def tested_features(self) -> tuple[str, ...]:
        """Names of the features each check tests, in column order."""
        return tuple(spec.name for spec in self._specs)

    @property
    def categorical_features(self) -> tuple[str, ...]:
        """Names of the tested features treated as categories."""
        return tuple(spec.name for spec in self._specs if spec.kind == "categorical")

    # Checks.

    def check(
        self,
        window: np.ndarray | Mapping[str, Any],
        *,
        predictions: np.ndarray | None = None,
        uncertainty: np.ndarray | None = None,
        label: str = "",
    ) -> DriftResult:
        """Test one live window against the reference.

        Args:
            window: Live rows, shape ``(n_rows, n_features)`` in the reference's
                column order, or a mapping (a dict of columns, a pandas
                DataFrame) from feature name to column. A mapping needs only
                the tested features; extra columns are ignored.
            predictions: The live model's classes (or class probabilities) for
                the rows, to test prediction drift. Needs ``reference_predictions``.
            uncertainty: The live model's uncertainty for each row, shape ``(n_rows,)``.
            label: Text naming the window in the result and the report.

        Raises:
            DriftError: If the window is empty, has the wrong width, misses a
                tested feature, contains NaN or infinite values (with
                ``nan_policy: raise``), has fewer than ``min_window_rows``
                rows, or its predictions or uncertainty do not match its rows.
        """
        matrix = self._as_matrix(window)
        n_rows = matrix.shape[0]
        if n_rows == 0:
            named = f" {label}" if label else ""
            raise DriftError(f"the live window{named} is empty: it has no rows to test.")
        # Only tested columns count: a NaN in an excluded column does not spoil the row.
        finite = np.isfinite(matrix[:, [spec.index for spec in self._specs]])
        keep = finite.all(axis=1)
        rows_dropped = int(n_rows - keep.sum())
        if rows_dropped and self.config.nan_policy == "raise":
            bad_columns = [spec.name for spec, ok in zip(self._specs, finite.all(axis=0)) if not ok]
            raise DriftError(
                f"{rows_dropped} of {n_rows} live rows contain NaN or infinite values (rows at positions "
                f"{format_ids(np.flatnonzero(~keep))}; features {', '.join(bad_columns)}). Fix the rows, "
                "or set monitoring.drift.nan_policy: drop to test the others."
            )
        label_array = None if predictions is None else _as_labels(predictions, n_rows, "predictions")
        live_uncertainty = self._checked_uncertainty(uncertainty, n_rows, "window")
        if rows_dropped:
            logger.warning("left %d of %d live rows with NaN or infinite values out of the drift check", rows_dropped, n_rows)
            matrix = matrix[keep]
            label_array = None if label_array is None else label_array[keep]
            live_uncertainty = None if live_uncertainty is None else live_uncertainty[keep]
        if matrix.shape[0] < self.config.min_window_rows:
            raise DriftError(
                f"the live window has {matrix.shape[0]} usable rows, fewer than min_window_rows "
                f"({self.config.min_window_rows}); wait for more rows or lower monitoring.drift.min_window_rows."
            )

        result = DriftResult(
            features=self._test_features(matrix),
            n_reference=self.n_reference,
            n_window=int(matrix.shape[0]),
            alpha=self.config.alpha,
            correction=self.config.correction,
            min_drifted_share=self.config.min_drifted_share,
            prediction_drift=None if label_array is None else self._prediction_drift(label_array),
            uncertainty_drift=None if live_uncertainty is None else self._uncertainty_drift(live_uncertainty),
            rows_dropped=rows_dropped,
            label=label,
            excluded_features=tuple(self.config.exclude_features),
        )
        logger.debug("drift check %s: %s", label, result.summary())
        return result

    def check_window(self, window: Window) -> DriftResult:
        """Test a :class:`~al_ray.monitoring.windows.Window` with its predictions and uncertainty."""
        return self.check(
            window.features, predictions=window.predictions, uncertainty=window.uncertainty, label=window.label
        )

    def _as_matrix(self, window: np.ndarray | Mapping[str, Any]) -> np.ndarray:
        if isinstance(window, Mapping) or hasattr(window, "columns"):
            return self._matrix_from_columns(window)
        matrix = np.asarray(window)
        if matrix.ndim != 2:
            raise DriftError(
                f"the live window must be a 2-D array of shape (n_rows, {len(self.feature_names)}), "
                f"got shape {matrix.shape}."
            )
        if matrix.shape[1] != len(self.feature_names):
            raise DriftError(
                f"the live window has {matrix.shape[1]} columns, but the reference has "
                f"{len(self.feature_names)} ({', '.join(self.feature_names)}); send the same features in the "
                "same order, or pass a mapping from feature name to column."
            )
        return self._rounded(matrix)

    def _matrix_from_columns(self, window: Any) -> np.ndarray:
        missing = [spec.name for spec in self._specs if spec.name not in window]
        if missing:
            raise DriftError(
                f"the live rows miss the tested features {', '.join(missing)}; send every feature of the "
                "reference, or add the missing ones to monitoring.drift.exclude_features."
            )
        columns = [np.asarray(window[spec.name]) for spec in self._specs]
        lengths = {column.shape for column in columns}
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            raise DriftError(f"the live columns must be 1-D and of one length, got shapes {sorted(lengths)}.")
        # Columns the detector does not test stay NaN-free zeros, so they never trip the NaN check.
        matrix = np.zeros((columns[0].shape[0], len(self.feature_names)), dtype=np.float64)
        for spec, column in zip(self._specs, columns):
            matrix[:, spec.index] = self._rounded(column)
        return matrix

    def _rounded(self, values: np.ndarray) -> np.ndarray:
        if values.dtype.kind not in "biuf":
            raise DriftError(f"the live window must be numeric, got dtype {values.dtype}.")
        return values.astype(self._dtype).astype(np.float64)

    def _test_features(self, matrix: np.ndarray) -> tuple[FeatureDrift, ...]:
        config = self.config
        measured = []
        for spec in self._specs:
            values = matrix[:, spec.index]
            counts = spec.bins.counts(values)
            reference_shares = spec.reference_counts / spec.reference_counts.sum()
            window_shares = counts / counts.sum()
            psi = population_stability_index(reference_shares, window_shares)
            if spec.test == "ks":
                statistic, p_value = ks_two_sample(spec.reference, values)
            elif spec.test == "chi2":
                statistic, p_value = chi2_homogeneity(spec.reference_counts, counts)
            else:
                statistic, p_value = psi, None
            measured.append((spec, statistic, p_value, psi, reference_shares, window_shares))

        tested = [index for index, item in enumerate(measured) if item[2] is not None]
        adjusted = adjust_p_values([measured[index][2] for index in tested], config.correction)
        adjusted_by_index = dict(zip(tested, adjusted.tolist()))

        features = []
        for index, (spec, statistic, p_value, psi, reference_shares, window_shares) in enumerate(measured):
            p_adjusted = adjusted_by_index.get(index)
            drifted = p_adjusted <= config.alpha if p_adjusted is not None else psi >= config.psi_threshold
            features.append(
                FeatureDrift(
                    name=spec.name,
                    kind=spec.kind,  # type: ignore[arg-type]
                    test=spec.test,  # type: ignore[arg-type]
                    statistic=statistic,
                    p_value=p_value,
                    p_value_adjusted=p_adjusted,
                    psi=psi,
                    drifted=bool(drifted),
                    constant_reference=spec.constant,
                    bin_labels=spec.bins.labels,
                    reference_shares=tuple(reference_shares.tolist()),
                    window_shares=tuple(window_shares.tolist()),
                )
            )
        return tuple(features)

    def _prediction_drift(self, labels: np.ndarray) -> PredictionDrift:
        if self._reference_classes is None or self._reference_class_counts is None:
            raise DriftError(
                "predictions were passed for the window, but the detector has no reference_predictions "
                "to compare them with; pass reference_predictions when you build the DriftDetector."
            )
        classes = np.union1d(self._reference_classes, labels)
        reference_counts = np.zeros(classes.size, dtype=np.int64)
        reference_counts[np.searchsorted(classes, self._reference_classes)] = self._reference_class_counts
        window_counts = np.zeros(classes.size, dtype=np.int64)
        found, counts = np.unique(labels, return_counts=True)
        window_counts[np.searchsorted(classes, found)] = counts
        statistic, p_value = chi2_homogeneity(reference_counts, window_counts)
        return PredictionDrift(
            statistic=statistic,
            p_value=p_value,
            drifted=p_value <= self.config.prediction_alpha,
            classes=tuple(str(name) for name in classes.tolist()),
            reference_shares=tuple((reference_counts / reference_counts.sum()).tolist()),
            window_shares=tuple((window_counts / window_counts.sum()).tolist()),
        )

    def _uncertainty_drift(self, uncertainty: np.ndarray) -> UncertaintyDrift:
        quantiles = self.config.uncertainty_quantiles
        window_values = np.quantile(uncertainty, quantiles)
        reference = self._reference_uncertainty
        return UncertaintyDrift(
            mean=float(uncertainty.mean()),
            quantiles=dict(zip(quantiles, window_values.tolist())),
            reference_mean=None if reference is None else float(reference.mean()),
            reference_quantiles=None if reference is None else dict(zip(quantiles, np.quantile(reference, quantiles).tolist())),
        )


def _checked_names(feature_names: Sequence[str], n_features: int) -> tuple[str, ...]:
    names = tuple(str(name) for name in feature_names)
    if len(names) != n_features:
        raise DriftError(f"the reference has {n_features} columns but {len(names)} feature names; give one name per column.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DriftError(f"feature names must be unique, got repeats: {', '.join(repeated)}.")
    return names


def _check_known(requested: Sequence[str], feature_names: tuple[str, ...], key: str) -> None:
    unknown = [name for name in requested if name not in feature_names]
    if unknown:
        raise DriftError(
            f"monitoring.drift.{key} names features the reference does not have: {', '.join(unknown)}; "
            f"the features are {', '.join(feature_names)}."
        )


def _check_finite(matrix: np.ndarray, description: str) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DriftError(
            f"{description} contains NaN or infinite values in {rows.size} rows (positions {format_ids(rows)}); "
            "impute or drop them before building the detector."
        )


def _as_labels(predictions: np.ndarray, n_rows: int, description: str) -> np.ndarray:
    array = np.asarray(predictions)
    if array.ndim == 2 and array.dtype.kind in "f":
        array = np.argmax(array, axis=1)
    if array.shape != (n_rows,):
        raise DriftError(
            f"{description} must have shape ({n_rows},) (one class per row) or ({n_rows}, n_classes) "
            f"(class probabilities), got {np.asarray(predictions).shape}."
        )
    return array.astype(str)
