"""The in-memory form of a labeled dataset, addressed by ``row_id``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike

from al_ray.errors import DataError

__all__ = ["LabeledData", "format_ids"]

# How many offending ids or values an error message shows before "and N more".
_MAX_SHOWN_VALUES = 5


def format_ids(values: Sequence[object] | np.ndarray, limit: int = _MAX_SHOWN_VALUES) -> str:
    """Format the first ``limit`` values for an error message, with a count of the rest."""
    items = list(values)
    shown = ", ".join(str(item) for item in items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def _read_only(array: np.ndarray) -> np.ndarray:
    # A view, so the caller's own array keeps its flags.
    view = array.view()
    view.flags.writeable = False
    return view


def _as_row_ids(values: ArrayLike, description: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{description} must be a 1-D array of integers, got shape {array.shape}.")
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise DataError(
            f"{description} must hold integers, got dtype {array.dtype}. "
            "Convert the ids to int64 before passing them."
        )
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise DataError(f"{description} contains {array.max()}, which does not fit in int64.")
    return array.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class LabeledData:
    """Features and labels of one dataset, each row identified by its ``row_id``.

    The arrays are stored as read-only views, so a ``LabeledData`` cannot be
    changed after it is built, and loaders may cache and share it.
    Construction validates the shapes, dtypes and values and raises
    :class:`~al_ray.errors.DataError` on the first problem found.
    """

    name: str
    """Dataset name, used in logs, run records and messages."""

    row_ids: np.ndarray
    """Stable identity of each row, shape ``(n_rows,)``, int64, unique."""

    features: np.ndarray
    """Feature matrix, shape ``(n_rows, n_features)``, float32, C-contiguous, finite."""

    labels: np.ndarray
    """Class of each row as an index into :attr:`classes`, shape ``(n_rows,)``, int64."""

    classes: tuple[str, ...]
    """Class names, unique and sorted as strings (so ``"10"`` sorts before ``"2"``),
    the order in which ``numpy.unique`` and scikit-learn's ``classes_`` list them."""

    feature_names: tuple[str, ...]
    """Name of each feature column, length ``n_features``, unique."""

    image_shape: tuple[int, int] | None = None
    """``(height, width)`` when each row is a flattened greyscale image, else None."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"dataset name must be a non-empty string, got {self.name!r}.")

        row_ids = _as_row_ids(self.row_ids, f"row_ids of dataset {self.name!r}")
        n_rows = row_ids.shape[0]
        self._check_unique(row_ids)

        features = self._checked_features(n_rows)
        classes = self._checked_classes()
        labels = self._checked_labels(n_rows, len(classes))
        feature_names = self._checked_feature_names(features.shape[1])
        image_shape = self._checked_image_shape(features.shape[1])
        self._check_finite(features, row_ids)

        # The dataclass is frozen, so normalized values are stored through object.__setattr__.
        object.__setattr__(self, "row_ids", _read_only(row_ids))
        object.__setattr__(self, "features", _read_only(features))
        object.__setattr__(self, "labels", _read_only(labels))
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "feature_names", feature_names)
        object.__setattr__(self, "image_shape", image_shape)

    def _check_unique(self, row_ids: np.ndarray) -> None:
        unique, counts = np.unique(row_ids, return_counts=True)
        duplicated = unique[counts > 1]
        if duplicated.size:
            raise DataError(
                f"row_ids of dataset {self.name!r} must be unique, but {duplicated.size} ids "
                f"repeat: {format_ids(duplicated)}. Give every row its own id."
            )

    def _checked_features(self, n_rows: int) -> np.ndarray:
        features = np.asarray(self.features)
        if features.ndim != 2 or features.shape[0] != n_rows:
            raise DataError(
                f"features of dataset {self.name!r} must have shape ({n_rows}, n_features) "
                f"to match {n_rows} row_ids, got shape {features.shape}."
            )
        if features.dtype.kind not in "biuf":
            raise DataError(
                f"features of dataset {self.name!r} must be numeric, got dtype {features.dtype}."
            )
        return np.ascontiguousarray(features, dtype=np.float32)

    def _checked_classes(self) -> tuple[str, ...]:
        classes = tuple(self.classes)
        if not classes:
            raise DataError(f"dataset {self.name!r} must have at least one class, got none.")
        not_text = [name for name in classes if not isinstance(name, str)]
        if not_text:
            raise DataError(
                f"class names of dataset {self.name!r} must be strings, got {format_ids(not_text)}."
            )
        if len(set(classes)) != len(classes) or list(classes) != sorted(classes):
            raise DataError(
                f"class names of dataset {self.name!r} must be unique and sorted, got "
                f"{format_ids(classes, limit=10)}. Pass tuple(sorted(set(names)))."
            )
        return classes

    def _checked_labels(self, n_rows: int, n_classes: int) -> np.ndarray:
        labels = np.asarray(self.labels)
        if labels.shape != (n_rows,):
            raise DataError(
                f"labels of dataset {self.name!r} must have shape ({n_rows},) to match the "
                f"row_ids, got shape {labels.shape}."
            )
        if n_rows and labels.dtype.kind not in "iu":
            raise DataError(
                f"labels of dataset {self.name!r} must be integer indices into classes, "
                f"got dtype {labels.dtype}."
            )
        labels = labels.astype(np.int64, copy=False)
        outside = np.flatnonzero((labels < 0) | (labels >= n_classes))
        if outside.size:
            raise DataError(
                f"labels of dataset {self.name!r} must be indices in [0, {n_classes - 1}] for "
                f"{n_classes} classes, got {format_ids(labels[outside])}."
            )
        return labels

    def _checked_feature_names(self, n_features: int) -> tuple[str, ...]:
        names = tuple(str(name) for name in self.feature_names)
        if len(names) != n_features:
            raise DataError(
                f"dataset {self.name!r} has {n_features} feature columns but "
                f"{len(names)} feature names; give one name per column."
            )
        if len(set(names)) != len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise DataError(
                f"feature names of dataset {self.name!r} must be unique, got repeats: "
                f"{format_ids(repeated)}."
            )
        return names

    def _checked_image_shape(self, n_features: int) -> tuple[int, int] | None:
        if self.image_shape is None:
            return None
        height, width = (int(size) for size in self.image_shape)
        if height <= 0 or width <= 0 or height * width != n_features:
            raise DataError(
                f"image_shape {tuple(self.image_shape)} of dataset {self.name!r} does not match "
                f"{n_features} features; height * width must equal the number of features."
            )
        return (height, width)

    def _check_finite(self, features: np.ndarray, row_ids: np.ndarray) -> None:
        bad = ~np.isfinite(features)
        if bad.any():
            bad_rows = row_ids[bad.any(axis=1)]
            raise DataError(
                f"features of dataset {self.name!r} contain {int(bad.sum())} NaN or inf values "
                f"in {bad_rows.size} rows (row_ids {format_ids(bad_rows)}). "
                "Impute those values or drop the rows."
            )

    def __len__(self) -> int:
        return int(self.row_ids.shape[0])

    def __repr__(self) -> str:
        return (
            f"LabeledData(name={self.name!r}, n_rows={len(self)}, "
            f"n_features={self.n_features}, n_classes={self.n_classes})"
        )

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.features.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of class names, including any class without rows in this subset."""
        return len(self.classes)

    @cached_property
    def _id_index(self) -> tuple[np.ndarray, np.ndarray]:
        # (order, sorted ids) with row_ids[order] == sorted ids, for searchsorted look-ups.
        order = np.argsort(self.row_ids, kind="stable")
        return order, self.row_ids[order]

    def positions(self, row_ids: ArrayLike) -> np.ndarray:
        """Return the array positions of ``row_ids``, in the order given.

        Args:
            row_ids: Ids to look up, shape ``(k,)``, integers.

        Returns:
            Positions into this dataset's arrays, shape ``(k,)``, int64.

        Raises:
            DataError: If an id is not in this dataset.
        """
        requested = _as_row_ids(row_ids, "row_ids to look up")
        order, sorted_ids = self._id_index
        if len(self) == 0:
            found = np.zeros(requested.shape, dtype=bool)
            slots = np.zeros(requested.shape, dtype=np.int64)
        else:
            slots = np.minimum(np.searchsorted(sorted_ids, requested), len(self) - 1)
            found = sorted_ids[slots] == requested
        if not found.all():
            unknown = requested[~found]
            raise DataError(
                f"{unknown.size} row_ids are not in dataset {self.name!r}: "
                f"{format_ids(unknown)}. Pass only ids from its row_ids."
            )
        return order[slots].astype(np.int64, copy=False)

    def subset(self, row_ids: ArrayLike) -> LabeledData:
        """Return the rows with the given ``row_ids``, in the order given.

        The subset keeps every class name, even a class with no rows left, so
        label indices mean the same class in the subset and in the whole set.

        Args:
            row_ids: Ids of the rows to keep, shape ``(k,)``, unique integers.

        Raises:
            DataError: If an id is unknown or repeated.
        """
        requested = _as_row_ids(row_ids, "row_ids of the subset")
        unique, counts = np.unique(requested, return_counts=True)
        if (counts > 1).any():
            raise DataError(
                f"row_ids of a subset of dataset {self.name!r} must be unique, but these "
                f"repeat: {format_ids(unique[counts > 1])}."
            )
        positions = self.positions(requested)
        return LabeledData(
            name=self.name,
            row_ids=requested,
            features=self.features[positions],
            labels=self.labels[positions],
            classes=self.classes,
            feature_names=self.feature_names,
            image_shape=self.image_shape,
        )

    def label_names(self, row_ids: ArrayLike) -> list[str]:
        """Return the class name of each row in ``row_ids``, in the order given.

        Raises:
            DataError: If an id is not in this dataset.
        """
        labels = self.labels[self.positions(row_ids)]
        return [self.classes[index] for index in labels]
