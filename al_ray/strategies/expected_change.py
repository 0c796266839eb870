"""Expected model change: gradient sizes and gradient embeddings of a softmax last layer.

Take a softmax classifier whose last layer maps an embedding ``h`` of shape
``(d,)`` to ``n_classes`` logits, or a linear model on features ``h``. The
gradient of its cross-entropy loss for label ``y`` with respect to the weight
matrix is the outer product ``(p - e_y) ⊗ h`` of shape ``(n_classes, d)``,
where ``p`` is the predicted class distribution and ``e_y`` the one-hot vector
of ``y``. Its Frobenius norm factorises as ``||p - e_y||_2 * ||h||_2``, so
nothing here builds an outer product. Memory stays ``O(n_rows * (d +
n_classes))`` for the gradient lengths, and ``O(n_rows * n_centers)`` for the
distances.

Probabilities are validated and renormalised by
:func:`al_ray.strategies.measures.as_probabilities`. Embeddings may be any
float dtype and are computed on in float64.
"""

from __future__ import annotations

import numpy as np

from al_ray.errors import StrategyError
from al_ray.strategies.measures import as_probabilities

__all__ = [
    "expected_gradient_length",
    "gradient_embedding_factors",
    "gradient_embedding_sq_distances",
]


def _as_matrix(values: np.ndarray, name: str, axes: str) -> np.ndarray:
    """Return ``values`` as a finite float64 2-D copy. Error messages call it ``name``."""
    matrix = np.array(values, dtype=np.float64, copy=True)
    if matrix.ndim != 2:
        raise StrategyError(f"{name} must have shape ({axes}), got {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        row = np.argwhere(~np.isfinite(matrix))[0][0]
        raise StrategyError(
            f"{name} contain NaN or inf (row {row}); check the model output they came from"
        )
    return matrix


def _row_norms(matrix: np.ndarray) -> np.ndarray:
    """Return the Euclidean norm of each row without overflow in the squares."""
    scale = np.abs(matrix).max(axis=1)
    safe_scale = np.where(scale > 0, scale, 1.0)
    with np.errstate(over="ignore"):
        # A norm above the float64 maximum becomes inf, and the caller reports it.
        return scale * np.sqrt(((matrix / safe_scale[:, None]) ** 2).sum(axis=1))


def _split_argmax(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(yhat, rest)``: the argmax class per row and ``p`` with that column set to 0."""
    yhat = p.argmax(axis=1)
    rest = p.copy()
    rest[np.arange(p.shape[0]), yhat] = 0.0
    return yhat, rest


def expected_gradient_length(
    probabilities: np.ndarray, embeddings: np.ndarray, include_bias: bool = True
) -> np.ndarray:
    """Compute the expected gradient length of a softmax last layer per row.

    ``EGL(x) = sum_y p(y | x) * ||p - e_y||_2 * ||h||_2``: the length of the
    weight gradient that labelling ``x`` would cause, averaged over the labels
    the model expects. ``||p - e_y||^2 = sum_{c != y} p_c^2 + (1 - p_y)^2`` is
    evaluated so that near-certain rows keep their relative precision.

    Parameters
    ----------
    probabilities : array of shape (n_rows, n_classes)
        Predicted class distribution of each row, any float dtype.
    embeddings : array of shape (n_rows, d)
        Input ``h`` of the last layer for each row (the features, for a linear
        model), any float dtype.
    include_bias : bool
        Whether the layer has a bias. The bias acts as a weight on a constant
        input 1, so ``||h||`` becomes ``sqrt(||h||^2 + 1)``.

    Returns
    -------
    ndarray of shape (n_rows,), float64
        Values ``>= 0``. In ``[0, sqrt(2) * ||h||]`` up to rounding, because
        ``||p - e_y|| <= sqrt(2)``.

    Raises
    ------
    StrategyError
        For invalid probabilities (see ``as_probabilities``), embeddings that
        are not 2-D, have no columns, contain NaN or inf, or have a row count
        different from ``probabilities``, and for an embedding norm that
        overflows float64.

    References
    ----------
    B. Settles, M. Craven and S. Ray, "Multiple-instance active learning",
    NeurIPS 2008.
    """
    p = as_probabilities(probabilities)
    h = _as_matrix(embeddings, "embeddings", "n_rows, d")
    if h.shape[0] != p.shape[0]:
        raise StrategyError(
            f"embeddings have {h.shape[0]} rows but probabilities have {p.shape[0]}; "
            "pass both for the same rows in the same order"
        )
    if h.shape[1] == 0:
        raise StrategyError(
            f"embeddings have no columns, got shape {h.shape}; pass the last layer's input"
        )
    n_rows = p.shape[0]
    if n_rows == 0:
        return np.empty(0, dtype=np.float64)

    h_norms = _row_norms(h)
    if include_bias:
        h_norms = np.hypot(h_norms, 1.0)
    if not np.all(np.isfinite(h_norms)):
        raise StrategyError(
            "an embedding's norm overflows float64; rescale the embeddings "
            "(values near 1e154 or above cannot be squared)"
        )

    yhat, rest = _split_argmax(p)
    rows = np.arange(n_rows)
    p_max = p[rows, yhat]
    rest_sq = (rest**2).sum(axis=1)  # sum_{c != yhat} p_c^2
    # For y != yhat, sum_{c != y} p_c^2 = rest_sq - p_y^2 + p_yhat^2. Since
    # p_y <= 1/2 there, (1 - p_y)^2 >= 1/4 dwarfs the rounding error of the
    # subtraction. rest_sq contains the term p_y^2, so the difference is >= 0.
    sq_lengths = (rest_sq[:, None] - p**2) + p_max[:, None] ** 2 + (1.0 - p) ** 2
    # For y = yhat, 1 - p_yhat is taken as the sum of the other probabilities,
    # which stays accurate when p_yhat rounds to 1.
    sq_lengths[rows, yhat] = rest_sq + rest.sum(axis=1) ** 2
    residual_norms = np.sqrt(sq_lengths)  # ||p - e_y||, shape (n_rows, n_classes)
    return (p * residual_norms).sum(axis=1) * h_norms


def gradient_embedding_factors(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the class factor of the BADGE gradient embedding per row.

    BADGE embeds a row by the loss gradient for the label the model predicts,
    ``g = (p - e_yhat) ⊗ h``. This returns ``a = p - e_yhat`` so that callers
    can work with ``g`` in factorised form (see
    :func:`gradient_embedding_sq_distances`).

    Parameters
    ----------
    probabilities : array of shape (n_rows, n_classes)
        Predicted class distribution of each row, any float dtype.

    Returns
    -------
    a : ndarray of shape (n_rows, n_classes), float64
        ``p - e_yhat``. The entry at ``yhat`` is minus the sum of the other
        probabilities, which equals ``p_yhat - 1`` without cancellation.
    yhat : ndarray of shape (n_rows,), intp
        The most probable class, ties to the lowest index as in ``numpy.argmax``.

    References
    ----------
    J. T. Ash, C. Zhang, A. Krishnamurthy, J. Langford and A. Agarwal, "Deep
    batch active learning by diverse, uncertain gradient lower bounds", ICLR 2020.
    """
    p = as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.empty_like(p), np.empty(0, dtype=np.intp)
    yhat, rest = _split_argmax(p)
    factors = p.copy()
    factors[np.arange(p.shape[0]), yhat] = -rest.sum(axis=1)
    return factors, yhat


def gradient_embedding_sq_distances(
    a_rows: np.ndarray, h_rows: np.ndarray, a_centers: np.ndarray, h_centers: np.ndarray
) -> np.ndarray:
    """Compute squared Euclidean distances between gradient embeddings ``a ⊗ h`` from their factors.

    ``||a_i ⊗ h_i - a_j ⊗ h_j||^2 = ||a_i||^2 ||h_i||^2 + ||a_j||^2 ||h_j||^2
    - 2 (a_i · a_j)(h_i · h_j)``, because the Frobenius inner product of two
    outer products is the product of the two inner products. Values below 0
    from cancellation (a row close to a center) are set to 0. To include a
    bias, append a column of ones to both ``h`` arrays.

    Parameters
    ----------
    a_rows : array of shape (n_rows, n_classes)
    h_rows : array of shape (n_rows, d)
    a_centers : array of shape (n_centers, n_classes)
    h_centers : array of shape (n_centers, d)

    Returns
    -------
    ndarray of shape (n_rows, n_centers), float64

    Raises
    ------
    StrategyError
        For an input that is not 2-D or contains NaN or inf, for shapes that do
        not match, and for a distance that overflows float64.
    """
    a_r = _as_matrix(a_rows, "a_rows", "n_rows, n_classes")
    h_r = _as_matrix(h_rows, "h_rows", "n_rows, d")
    a_c = _as_matrix(a_centers, "a_centers", "n_centers, n_classes")
    h_c = _as_matrix(h_centers, "h_centers", "n_centers, d")
    if a_r.shape[0] != h_r.shape[0]:
        raise StrategyError(
            f"a_rows has {a_r.shape[0]} rows but h_rows has {h_r.shape[0]}; "
            "pass both factors of the same rows"
        )
    if a_c.shape[0] != h_c.shape[0]:
        raise StrategyError(
            f"a_centers has {a_c.shape[0]} rows but h_centers has {h_c.shape[0]}; "
            "pass both factors of the same centers"
        )
    if a_r.shape[1] != a_c.shape[1]:
        raise StrategyError(
            f"a_rows has {a_r.shape[1]} class columns but a_centers has {a_c.shape[1]}; "
            "both must come from the same model"
        )
    if h_r.shape[1] != h_c.shape[1]:
        raise StrategyError(
            f"h_rows has {h_r.shape[1]} columns but h_centers has {h_c.shape[1]}; "
            "both must come from the same embedding layer"
        )

    with np.errstate(over="ignore", invalid="ignore"):
        row_sq_norms = (a_r**2).sum(axis=1) * (h_r**2).sum(axis=1)
        center_sq_norms = (a_c**2).sum(axis=1) * (h_c**2).sum(axis=1)
        cross = (a_r @ a_c.T) * (h_r @ h_c.T)
        distances = row_sq_norms[:, None] + center_sq_norms[None, :] - 2.0 * cross
    if not np.all(np.isfinite(distances)):
        raise StrategyError(
            "a squared gradient-embedding distance overflows float64; "
            "rescale the embeddings (values near 1e154 or above cannot be squared)"
        )
    return np.maximum(distances, 0.0)
