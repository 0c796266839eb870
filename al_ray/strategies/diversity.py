"""Batch-diverse selection: core-set, BADGE, cluster-margin and information density.

These are pure numpy and scikit-learn selectors for a candidate set that the
scorer has already cut down, for example to the ``m * n`` rows with the
highest cheap utility. None of them needs ``O(m^2)`` memory: distances are
computed in blocks or in factorized form. The selectors return positions into
the candidate arrays, int64, distinct even when rows are identical, in
selection order. The caller maps positions back to ``row_id``.

- :func:`greedy_k_center`: core-set (Sener and Savarese, ICLR 2018).
- :func:`badge_select`: BADGE (Ash et al., ICLR 2020).
- :func:`cluster_margin_select`: cluster-margin (Citovsky et al., NeurIPS 2021).
- :func:`information_density`: a utility weight, not a selector (Settles and
  Craven, EMNLP 2008).
"""

from al_ray.strategies.diversity_badge import badge_select
from al_ray.strategies.diversity_cluster import cluster_margin_select, default_cluster_count
from al_ray.strategies.diversity_coreset import greedy_k_center
from al_ray.strategies.diversity_density import information_density

__all__ = [
    "badge_select",
    "cluster_margin_select",
    "default_cluster_count",
    "greedy_k_center",
    "information_density",
]
