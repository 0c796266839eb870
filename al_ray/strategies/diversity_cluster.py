"""Cluster-margin selection: round-robin over clusters of uncertain candidates.

Reference: G. Citovsky, G. DeSalvo, C. Gentile, L. Karydas, A. Rajagopalan,
A. Rostamizadeh and S. Kumar, "Batch active learning at scale", NeurIPS 2021.
The paper clusters the pool once with hierarchical agglomerative clustering
(average linkage), keeps the candidates with the smallest margins, sorts their
clusters by size, smallest first, and visits the clusters round-robin, one row
per cluster per turn. Small clusters go first, so rare regions of the pool are
not crowded out by large ones.

Differences here, chosen for scale:

- Without precomputed labels the candidates are clustered with scikit-learn's
  ``MiniBatchKMeans``, because average-linkage clustering needs the
  ``O(m^2)`` distance matrix.
- Each cluster gives its highest-utility rows in order, where the paper draws
  a random member, so the seed only affects the clustering.
"""

from __future__ import annotations

import logging
import math
import numbers

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from al_ray.errors import StrategyError
from al_ray.strategies._diversity_common import (
    DEFAULT_CHUNK_ROWS,
    as_float64_rows,
    as_float64_vector,
    check_count,
    check_seed,
)

__all__ = ["cluster_margin_select", "default_cluster_count"]

logger = logging.getLogger(__name__)

# scikit-learn turns an int random_state into a legacy RandomState, which takes
# seeds below 2**32 only.
_SKLEARN_SEED_LIMIT = 2**32

# Rows per MiniBatchKMeans step: larger batches make fewer, better steps.
_KMEANS_BATCH_ROWS = 4096

# Mini-batch steps to take at least. Large candidate sets get one pass over the
# data (m / 4096 steps), small ones as many passes as it takes to reach this.
_KMEANS_MIN_STEPS = 20


def default_cluster_count(n_candidates: int) -> int:
    """Return ``min(m, ceil(2 sqrt(m)))``, the default number of clusters for ``m`` candidates.

    The count does not grow with the batch size ``n``: k-means costs
    ``O(m * n_clusters * d)`` per pass, so ``n_clusters = n = 10^4`` on
    ``m = 10^5`` rows would take minutes. When ``n`` exceeds the count, the
    round-robin takes several rows from each cluster.
    """
    if n_candidates < 0:
        raise StrategyError(f"the number of candidates must be >= 0, got {n_candidates}")
    return min(n_candidates, math.ceil(2.0 * math.sqrt(n_candidates)))


def cluster_margin_select(
    margins: np.ndarray,
    features: np.ndarray | None,
    n: int,
    seed: int,
    *,
    n_clusters: int | None = None,
    clusters: np.ndarray | None = None,
) -> np.ndarray:
    """Select ``n`` candidates round-robin over clusters, smallest cluster first.

    Clusters are ordered by their number of candidates, ascending; clusters of
    equal size by their best utility, descending, then by label. Each turn
    visits every cluster in that order and takes the cluster's next row by
    utility (descending, lowest position on ties), skipping clusters that have
    run out, until ``n`` rows are taken. Sorting does all the work, so the cost
    is ``O(m log m)`` after clustering.

    Args:
        margins: Margin utility per candidate, shape ``(m,)``: higher means
            more uncertain, as :func:`~al_ray.strategies.measures.margin`
            returns.
        features: Candidate features for clustering, shape ``(m, d)``. Unused,
            and may be None, when ``clusters`` is given.
        n: Number of candidates to select; ``min(n, m)`` come back.
        seed: Seed for the clustering; unused when ``clusters`` is given.
        n_clusters: Number of k-means clusters; default
            :func:`default_cluster_count`. Values above ``m`` use ``m``.
        clusters: Precomputed cluster label per candidate, shape ``(m,)``, any
            integers, for example from clustering the whole pool once and
            reusing the labels every round.

    Returns:
        Positions into the candidate arrays, shape ``(min(n, m),)``, int64,
        distinct, in selection order.

    Raises:
        StrategyError: For a negative ``n`` or ``seed``, an ``n_clusters``
            below 1, both ``clusters`` and ``n_clusters`` given, neither
            ``clusters`` nor ``features`` given, arrays of the wrong shape or
            dtype, or a NaN or inf.
    """
    n = check_count(n)
    seed = check_seed(seed)
    margin_array = np.asarray(margins)
    if margin_array.ndim != 1:
        raise StrategyError(f"margins must have shape (m,), got {margin_array.shape}")
    m = margin_array.shape[0]
    utilities = as_float64_vector("margins", margin_array, m)

    if n_clusters is not None and (
        isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral) or n_clusters < 1
    ):
        raise StrategyError(f"n_clusters must be an integer >= 1 or None, got {n_clusters!r}")
    n_selected = min(n, m)
    if clusters is not None:
        if n_clusters is not None:
            raise StrategyError(
                f"pass either clusters or n_clusters, not both; got n_clusters={n_clusters!r} "
                "with precomputed clusters"
            )
        labels = _check_labels(clusters, m)
    elif features is None:
        raise StrategyError("features are required unless precomputed clusters are given")
    else:
        points, _ = as_float64_rows("features", features, DEFAULT_CHUNK_ROWS, n_rows=m)
        # Clustering is the slow step, so it is skipped when no row is wanted.
        labels = _cluster(points, n_clusters, seed) if n_selected > 0 else np.zeros(m, np.int64)

    if n_selected == 0:
        return np.empty(0, dtype=np.int64)
    return _round_robin(utilities, labels, n_selected)


def _check_labels(clusters: np.ndarray, m: int) -> np.ndarray:
    labels = np.asarray(clusters)
    if labels.shape != (m,):
        raise StrategyError(
            f"clusters must have shape ({m},), one label per candidate, got {labels.shape}"
        )
    if m > 0 and not np.issubdtype(labels.dtype, np.integer):
        raise StrategyError(
            f"clusters must be integer labels, got dtype {labels.dtype}; "
            "pass the labels_ of a fitted clustering"
        )
    return labels


def _cluster(points: np.ndarray, n_clusters: int | None, seed: int) -> np.ndarray:
    """Return a k-means cluster label per row of ``points``, shape ``(m,)``."""
    m = points.shape[0]
    if n_clusters is None:
        n_clusters = default_cluster_count(m)
    n_clusters = min(int(n_clusters), m)
    if n_clusters <= 1:
        return np.zeros(m, dtype=np.int64)

    random_state = int(np.random.default_rng(seed).integers(_SKLEARN_SEED_LIMIT))
    batch_rows = min(m, _KMEANS_BATCH_ROWS)
    # One random initialisation and few passes: k-means++ initialisation and
    # further passes cost more than the fit itself at these cluster counts,
    # and the round-robin needs a partition of the candidates, not the best
    # k-means optimum.
    kmeans = MiniBatchKMeans(
        n_clusters=n_clusters,
        init="random",
        n_init=1,
        batch_size=batch_rows,
        max_iter=max(1, math.ceil(_KMEANS_MIN_STEPS * batch_rows / m)),
        random_state=random_state,
    )
    labels = kmeans.fit_predict(points)
    logger.debug("cluster-margin: %d candidates in %d k-means clusters", m, n_clusters)
    return labels


def _round_robin(utilities: np.ndarray, labels: np.ndarray, n_selected: int) -> np.ndarray:
    """Return the first ``n_selected`` positions of the round-robin order."""
    m = utilities.shape[0]
    positions = np.arange(m)
    cluster_labels, cluster_of_row, sizes = np.unique(
        labels, return_inverse=True, return_counts=True
    )
    cluster_of_row = cluster_of_row.ravel()

    # Rows grouped by cluster, best utility first inside each cluster.
    by_cluster = np.lexsort((positions, -utilities, cluster_of_row))
    sorted_cluster = cluster_of_row[by_cluster]
    first_of_cluster = np.searchsorted(sorted_cluster, np.arange(cluster_labels.size))
    turn = positions - first_of_cluster[sorted_cluster]

    best_utility = utilities[by_cluster[first_of_cluster]]
    cluster_rank = np.empty(cluster_labels.size, dtype=np.int64)
    cluster_rank[np.lexsort((np.arange(cluster_labels.size), -best_utility, sizes))] = np.arange(
        cluster_labels.size
    )

    # Turn 0 visits every cluster in rank order, then turn 1, and so on.
    order = np.lexsort((cluster_rank[sorted_cluster], turn))
    return by_cluster[order[:n_selected]].astype(np.int64, copy=False)
