"""Input checks and rounding control shared by the batch-diversity selectors.

Every selector validates its input here, so the messages read the same: they
name the argument, the value received, what is allowed and how to fix it.
Positions in messages are positions in the candidate arrays, not row ids.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.extmath import row_norms

from al_ray.errors import StrategyError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FLOAT32_SAFE_SQUARED_NORMS",
    "as_float64_rows",
    "as_float64_vector",
    "check_chunk_rows",
    "check_count",
    "check_seed",
    "zero_rounding_noise",
]

DEFAULT_CHUNK_ROWS = 1024
"""Rows per block: a 1024 x 1024 float64 distance block takes 8 MiB."""

_EPSILON = float(np.finfo(np.float64).eps)

FLOAT32_SAFE_SQUARED_NORMS = (1e-20, 1e36)
"""Squared row norms for which float32 dot products keep a relative error bound.

Above 1e36 a dot product can overflow float32 (its maximum is 3.4e38).
Below 1e-20 the products of single elements can fall into float32's
subnormal range, where the absolute rounding error (about 1e-45 per term) no
longer stays a fraction of ``eps * |x| |y|``.
"""


def check_count(n: object) -> int:
    """Return ``n`` as an int, or raise :class:`StrategyError` unless it is an integer >= 0."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise StrategyError(f"n must be an integer >= 0, got {n!r} of type {type(n).__name__}")
    if n < 0:
        raise StrategyError(f"n must be an integer >= 0, got {n}")
    return int(n)


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise :class:`StrategyError` unless it is an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise StrategyError(
            f"seed must be an integer >= 0, got {seed!r}; "
            "derive one with al_ray.seeding.derive_seed(root_seed, purpose, round_index)"
        )
    return int(seed)


def check_chunk_rows(chunk_rows: object) -> int:
    """Return ``chunk_rows`` as an int, or raise :class:`StrategyError` unless it is >= 1."""
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, numbers.Integral) or chunk_rows < 1:
        raise StrategyError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    return int(chunk_rows)


def as_float64_rows(
    name: str,
    values: object,
    chunk_rows: int,
    *,
    n_rows: int | None = None,
    keep_float32: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a 2-D array and return it as float64 with its squared row norms.

    The array is returned without a copy when it is already float64, and it is
    never modified. Float32 and other dtypes are converted into one float64
    array block by block, so the only temporaries are ``chunk_rows`` rows long.

    Args:
        name: The argument's name, for error messages.
        values: Array of shape ``(n_rows, n_columns)``.
        chunk_rows: Rows converted and checked per block.
        n_rows: Required number of rows, or None for any.
        keep_float32: Return a float32 array as it is, without the float64
            copy, when every row's squared norm is 0 or within
            ``FLOAT32_SAFE_SQUARED_NORMS``. The caller then owns the rounding
            error of float32 arithmetic.

    Returns:
        The float64 array ``(n_rows, n_columns)`` (or the float32 input, see
        ``keep_float32``) and the squared Euclidean norm of each row
        ``(n_rows,)``, always float64.

    Raises:
        StrategyError: For a shape other than 2-D, a row count other than
            ``n_rows``, no columns, a NaN or an inf, or a row whose squared norm
            overflows float64.
    """
    array = np.asarray(values)
    if array.ndim != 2:
        raise StrategyError(f"{name} must have shape (n_rows, n_columns), got {array.shape}")
    if n_rows is not None and array.shape[0] != n_rows:
        raise StrategyError(
            f"{name} must have one row per candidate ({n_rows} rows), got shape {array.shape}"
        )
    if array.shape[1] == 0 and array.shape[0] > 0:
        raise StrategyError(f"{name} has no columns, got shape {array.shape}; pass at least one")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise StrategyError(f"{name} must hold real numbers, got dtype {array.dtype}")

    if array.dtype == np.float64 or (keep_float32 and array.dtype == np.float32):
        converted = array
    else:
        converted = np.empty(array.shape, dtype=np.float64)
    squared_norms = np.empty(array.shape[0], dtype=np.float64)
    with np.errstate(over="ignore"):
        for start in range(0, array.shape[0], chunk_rows):
            stop = start + chunk_rows
            block = converted[start:stop]
            if converted is not array:
                block[...] = array[start:stop]
            # A NaN or inf in a row makes its squared norm NaN or inf, so this one
            # check also catches values whose squares overflow float64.
            squared_norms[start:stop] = row_norms(block.astype(np.float64, copy=False), squared=True)
    bad = np.flatnonzero(~np.isfinite(squared_norms))
    if bad.size:
        raise StrategyError(
            f"{name} has NaN, inf or values too large to square in float64 at positions "
            f"{bad[:5].tolist()}; check the model output for those rows or rescale the values"
        )
    if converted.dtype == np.float32:
        low, high = FLOAT32_SAFE_SQUARED_NORMS
        nonzero = squared_norms[squared_norms > 0.0]
        if nonzero.size and (nonzero.min() < low or nonzero.max() > high):
            return as_float64_rows(name, array, chunk_rows, n_rows=n_rows)
    return converted, squared_norms


def as_float64_vector(name: str, values: object, n_rows: int) -> np.ndarray:
    """Return a finite float64 vector of shape ``(n_rows,)``, or raise :class:`StrategyError`."""
    array = np.asarray(values)
    if array.shape != (n_rows,):
        raise StrategyError(
            f"{name} must have shape ({n_rows},), one value per candidate, got {array.shape}"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise StrategyError(f"{name} must hold real numbers, got dtype {array.dtype}")
    vector = array.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        raise StrategyError(
            f"{name} must be finite; positions {bad[:5].tolist()} hold NaN or inf. "
            "Check the model's probabilities for these rows"
        )
    return vector


def zero_rounding_noise(squared_distances: np.ndarray, scale: np.ndarray, n_terms: int) -> None:
    """Set squared distances within rounding error of zero to exactly zero, in place.

    A squared distance computed as ``|x|^2 + |y|^2 - 2 x.y`` loses its low
    digits to cancellation, so identical rows come out a few ulps away from 0
    and are ordered by noise. The worst-case rounding error of a float64 dot
    product of ``n_terms`` products is about ``n_terms * eps * (|x|^2 + |y|^2) / 2``,
    and ``scale`` is ``|x|^2 + |y|^2``. Values under a few times that bound
    become 0, so duplicates tie exactly and the lowest position wins the tie.
    The price: distinct rows closer than about ``sqrt(n_terms * eps)`` times
    their norm count as duplicates.
    """
    tolerance = 4.0 * (n_terms + 2) * _EPSILON * scale
    squared_distances[squared_distances <= tolerance] = 0.0
