"""Agreement between annotators: Cohen's and Fleiss' kappa, accuracy on gold rows.

Kappa compares the observed agreement ``p_o`` with the agreement ``p_e``
expected by chance from how often each class is used:
``kappa = (p_o - p_e) / (1 - p_e)``. It is 1 for perfect agreement, 0 for
agreement at chance level and negative below chance.

Degenerate inputs return ``float("nan")`` rather than a number that would
mislead: fewer than two rated items, or ``p_e == 1``, which happens when every
rating is the same single class (the raters agree, but nothing shows whether
they agree beyond chance).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

from al_ray.errors import DataError
from al_ray.labeling.aggregation import Vote, check_votes

__all__ = ["cohen_kappa", "fleiss_kappa", "gold_accuracy", "pairwise_cohen"]

logger = logging.getLogger(__name__)


def _kappa(observed: float, expected: float) -> float:
    if expected >= 1.0:
        return math.nan
    kappa = (observed - expected) / (1.0 - expected)
    # Rounding can carry a perfect score a few ulps past 1.
    return min(1.0, max(-1.0, kappa))


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Return Cohen's kappa of two raters who labeled the same items.

    ``p_o`` is the share of items with equal labels and ``p_e = sum over
    classes c of share_a(c) * share_b(c)``, from each rater's own class shares
    (Cohen 1960, "A coefficient of agreement for nominal scales").

    Args:
        a: Labels of the first rater, one per item.
        b: Labels of the second rater for the same items, in the same order.

    Returns:
        Kappa in ``[-1, 1]``; NaN for fewer than two items, or when both raters
        gave one and the same class to every item.

    Raises:
        DataError: If ``a`` and ``b`` differ in length.
    """
    first, second = list(a), list(b)
    if len(first) != len(second):
        raise DataError(
            f"cohen_kappa needs one label per item from each rater, got {len(first)} "
            f"and {len(second)} labels. Pass the labels of the items both rated, aligned."
        )
    n_items = len(first)
    if n_items < 2:
        return math.nan
    observed = sum(x == y for x, y in zip(first, second)) / n_items
    shares_a, shares_b = Counter(first), Counter(second)
    expected = sum(shares_a[label] * shares_b[label] for label in shares_a) / (n_items * n_items)
    return _kappa(observed, expected)


def pairwise_cohen(votes: Iterable[Vote]) -> dict[tuple[str, str], tuple[float, int]]:
    """Return Cohen's kappa of every pair of annotators over the rows both labeled.

    Returns:
        ``(annotator_a, annotator_b)`` with ``a < b`` to ``(kappa, shared rows)``,
        for pairs that share at least two rows, in sorted pair order. Kappa may
        be NaN (see :func:`cohen_kappa`).

    Raises:
        DataError: If an annotator voted twice on one row.
    """
    by_annotator: dict[str, dict[int, str]] = defaultdict(dict)
    for vote in check_votes(votes):
        by_annotator[vote.annotator][vote.row_id] = vote.label

    results: dict[tuple[str, str], tuple[float, int]] = {}
    for first, second in combinations(sorted(by_annotator), 2):
        labels_a, labels_b = by_annotator[first], by_annotator[second]
        shared = sorted(labels_a.keys() & labels_b.keys())
        if len(shared) < 2:
            continue
        kappa = cohen_kappa([labels_a[row] for row in shared], [labels_b[row] for row in shared])
        results[(first, second)] = (kappa, len(shared))
    return results


def fleiss_kappa(votes: Iterable[Vote], classes: Sequence[str]) -> float:
    """Return Fleiss' kappa over all annotators, allowing a varying number of votes per row.

    Only rows with two or more votes count. With ``r_i`` votes on such a row
    ``i``, ``r_ik`` of them for class ``k``, and ``n`` such rows:

    - ``p_o`` is the mean over the rows of
      ``sum_k r_ik (r_ik - 1) / (r_i (r_i - 1))``, the chance that two
      different votes on the row agree.
    - ``pi_k`` is the mean over the rows of ``r_ik / r_i``, and
      ``p_e = sum_k pi_k ** 2``.

    With the same number of votes on every row this is the kappa of Fleiss
    (1971), "Measuring nominal scale agreement among many raters",
    Psychological Bulletin 76(5). For unequal numbers the ``p_o`` term is the
    one of K. L. Gwet's irrCAC package (``CAC.fleiss``). irrCAC also counts rows
    with a single vote in ``pi_k``. Here they are left out, which keeps kappa
    within ``[-1, 1]``. Each row's agreement is at least
    ``2 * sum_k (r_ik / r_i) ** 2 - 1``. The mean of squares is at least the
    square of the mean, so averaging over the same rows gives
    ``p_o >= 2 * p_e - 1``, which is ``kappa >= -1``.

    Args:
        votes: Votes of any number of rows, at most one per annotator and row.
        classes: Class names; every label must be one of them.

    Returns:
        Kappa in ``[-1, 1]``; NaN when fewer than two rows have two or more
        votes, or when every vote on those rows is the same class.

    Raises:
        DataError: If an annotator voted twice on a row or a label is not a class.
    """
    checked = check_votes(votes, classes)
    per_row: dict[int, Counter[str]] = defaultdict(Counter)
    for vote in checked:
        per_row[vote.row_id][vote.label] += 1

    rated = [counts for counts in per_row.values() if sum(counts.values()) >= 2]
    if len(rated) < 2:
        return math.nan

    agreement_sum = 0.0
    shares: Counter[str] = Counter()
    for counts in rated:
        n_votes = sum(counts.values())
        pairs_agreeing = sum(count * (count - 1) for count in counts.values())
        agreement_sum += pairs_agreeing / (n_votes * (n_votes - 1))
        for label, count in counts.items():
            shares[label] += count / n_votes
    observed = agreement_sum / len(rated)
    expected = sum((share / len(rated)) ** 2 for share in shares.values())
    return _kappa(observed, expected)


def gold_accuracy(
    votes: Iterable[Vote], gold: Mapping[int, str]
) -> dict[str, tuple[int, int, float]]:
    """Return each annotator's accuracy on the rows whose true label is known.

    Args:
        votes: Votes of any rows; only those on rows in ``gold`` count.
        gold: row_id to its known class name.

    Returns:
        Annotator id to ``(correct, total, correct / total)``, in sorted order,
        for annotators with at least one vote on a gold row.

    Raises:
        DataError: If an annotator voted twice on one row.
    """
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for vote in check_votes(votes):
        if vote.row_id not in gold:
            continue
        tally = tallies[vote.annotator]
        tally[0] += vote.label == gold[vote.row_id]
        tally[1] += 1
    return {
        annotator: (correct, total, correct / total)
        for annotator, (correct, total) in sorted(tallies.items())
    }
