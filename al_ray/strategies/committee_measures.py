"""Committee disagreement measures: per-member class probabilities in, one utility per row out.

Each measure takes committee probabilities of shape ``(n_members, n_rows,
n_classes)`` in any float dtype, computes in float64 and returns finite
utilities of shape ``(n_rows,)`` where higher means more disagreement. A member
may give probabilities of exactly 0 or 1: entropies use ``scipy.special.entr``
and divergences ``scipy.special.rel_entr``, which define ``0 * log 0 = 0``.
Each member's rows are renormalised first, as in
:func:`al_ray.strategies.measures.as_probabilities`.

Every member must give columns for the same classes in the same order. A member
trained on a subset of the classes is widened first with
:func:`align_member_probabilities`.

Reference: B. Settles, "Active Learning Literature Survey", University of
Wisconsin-Madison Computer Sciences Technical Report 1648, 2009, section 3.3.
"""

from __future__ import annotations

import operator
from typing import Literal

import numpy as np
from scipy.special import entr, rel_entr

from al_ray.errors import StrategyError

__all__ = [
    "align_member_probabilities",
    "as_committee_probabilities",
    "bald",
    "consensus_entropy",
    "max_disagreement",
    "variation_ratios",
    "vote_entropy",
]


def _checked_committee(committee_probabilities: np.ndarray) -> np.ndarray:
    """Return a validated float64 copy of ``committee_probabilities``, not yet renormalised."""
    p = np.array(committee_probabilities, dtype=np.float64, copy=True)
    if p.ndim != 3:
        raise StrategyError(
            "committee_probabilities must have shape (n_members, n_rows, n_classes), "
            f"got {p.shape}; stack each member's predict_proba output along a new first axis"
        )

    n_members, n_rows, n_classes = p.shape
    if n_members < 2:
        raise StrategyError(
            f"a committee needs at least 2 members, got {n_members}; "
            "train more members or use an uncertainty measure for a single model"
        )
    if n_classes == 0:
        raise StrategyError(
            f"committee_probabilities have no class columns, got shape {p.shape}; "
            "each member must predict at least one class"
        )
    if n_rows == 0:
        return p

    if not np.all(np.isfinite(p)):
        member, row, _ = np.argwhere(~np.isfinite(p))[0]
        raise StrategyError(
            f"committee_probabilities contain NaN or inf (member {member}, row {row}); "
            "check that member's predict_proba output"
        )
    if np.any(p < 0):
        member, row, _ = np.argwhere(p < 0)[0]
        raise StrategyError(
            f"committee_probabilities must be >= 0, got a minimum of {p.min():.6g} "
            f"(member {member}, row {row}); pass probabilities, not logits or log-probabilities"
        )

    with np.errstate(over="ignore"):
        totals = p.sum(axis=2, keepdims=True)
    if np.any(totals <= 0):
        member, row, _ = np.argwhere(totals <= 0)[0]
        raise StrategyError(
            f"a row of committee_probabilities sums to 0 (member {member}, row {row}); "
            "every member's row needs some mass"
        )
    if not np.all(np.isfinite(totals)):
        # Dividing by an infinite total would turn the row into zeros without an error.
        member, row, _ = np.argwhere(~np.isfinite(totals))[0]
        raise StrategyError(
            "a row of committee_probabilities sums to more than the float64 maximum "
            f"(member {member}, row {row}); pass probabilities in [0, 1], not unnormalised scores"
        )
    return p


def as_committee_probabilities(committee_probabilities: np.ndarray) -> np.ndarray:
    """Return ``committee_probabilities`` as a validated float64 copy, each member's rows renormalised.

    Parameters
    ----------
    committee_probabilities : array of shape (n_members, n_rows, n_classes)
        Class probabilities of each member, in any float dtype.

    Returns
    -------
    ndarray of shape (n_members, n_rows, n_classes), float64

    Raises
    ------
    StrategyError
        For a wrong number of dimensions, fewer than 2 members, no class
        columns, a NaN, an inf, a negative value, or a member's row whose sum
        is zero or overflows float64.
    """
    p = _checked_committee(committee_probabilities)
    if p.shape[1] == 0:
        return p
    return p / p.sum(axis=2, keepdims=True)


def vote_entropy(committee_probabilities: np.ndarray) -> np.ndarray:
    """Compute the entropy of the members' votes per row, in nats.

    Each member votes for its most probable class. Ties go to the lowest class
    index, as in ``numpy.argmax``, and are decided on the input values before
    renormalisation, so rounding cannot create a tie. The vote distribution is
    ``V(c) / n_members``, and its entropy lies in ``[0, ln min(n_members, n_classes)]``.

    Parameters
    ----------
    committee_probabilities : array of shape (n_members, n_rows, n_classes)

    Returns
    -------
    ndarray of shape (n_rows,), float64

    References
    ----------
    I. Dagan and S. P. Engelson, "Committee-based sampling for training
    probabilistic classifiers", ICML 1995.
    """
    p = _checked_committee(committee_probabilities)
    if p.shape[1] == 0:
        return np.empty(0, dtype=np.float64)
    return entr(_vote_counts(p) / p.shape[0]).sum(axis=1)


def variation_ratios(committee_probabilities: np.ndarray) -> np.ndarray:
    """Compute the share of members that do not vote for the modal class per row.

    ``1 - max_c V(c) / n_members``, where ``V(c)`` counts the members whose most
    probable class is ``c``. Each member's own ties go to the lowest class
    index, as in :func:`vote_entropy`. A tie between modal classes needs no
    rule, because the value depends only on the modal count: votes of
    ``(2, 2, 1)`` give ``1 - 2/5`` whichever class is called modal. With the
    samples of an MC-dropout network as members, this is the variation ratio
    of Gal, Islam and Ghahramani.

    Parameters
    ----------
    committee_probabilities : array of shape (n_members, n_rows, n_classes)

    Returns
    -------
    ndarray of shape (n_rows,), float64
        Values in ``[0, 1 - ceil(n_members / n_classes) / n_members]``.

    References
    ----------
    L. C. Freeman, "Elementary Applied Statistics", Wiley, 1965.
    Y. Gal, R. Islam and Z. Ghahramani, "Deep Bayesian active learning with
    image data", ICML 2017.
    """
    p = _checked_committee(committee_probabilities)
    if p.shape[1] == 0:
        return np.empty(0, dtype=np.float64)
    n_members = p.shape[0]
    # Integer counts keep the value exact when every member agrees: 1 - M / M = 0.
    return (n_members - _vote_counts(p).max(axis=1)) / n_members


def _vote_counts(p: np.ndarray) -> np.ndarray:
    """Count each member's argmax vote per row and class, shape ``(n_rows, n_classes)``, float64."""
    _, n_rows, n_classes = p.shape
    votes = p.argmax(axis=2)  # (n_members, n_rows)
    vote_counts = np.zeros((n_rows, n_classes), dtype=np.float64)
    rows = np.arange(n_rows)
    for member_votes in votes:
        vote_counts[rows, member_votes] += 1.0
    return vote_counts


def consensus_entropy(committee_probabilities: np.ndarray) -> np.ndarray:
    """Compute the entropy of the consensus (the mean of the members' distributions) per row, in nats.

    Parameters
    ----------
    committee_probabilities : array of shape (n_members, n_rows, n_classes)

    Returns
    -------
    ndarray of shape (n_rows,), float64
        Values in ``[0, ln n_classes]``.
    """
    p = as_committee_probabilities(committee_probabilities)
    if p.shape[1] == 0:
        return np.empty(0, dtype=np.float64)
    return entr(p.mean(axis=0)).sum(axis=1)


def max_disagreement(
    committee_probabilities: np.ndarray, reduction: Literal["mean", "max"] = "mean"
) -> np.ndarray:
    """Compute the Kullback-Leibler divergence of the members from the consensus per row, in nats.

    The consensus is the mean of the members' distributions. With
    ``reduction="mean"`` the divergences are averaged over members, the "KL
    divergence to the mean" of McCallum and Nigam. That mean equals the mutual
    information that :func:`bald` returns, up to rounding. With
    ``reduction="max"`` the largest divergence of any member is returned, as
    modAL's ``KL_max_disagreement`` does.

    Parameters
    ----------
    committee_probabilities : array of shape (n_members, n_rows, n_classes)
    reduction : {"mean", "max"}
        How the per-member divergences of a row are combined.

    Returns
    -------
    ndarray of shape (n_rows,), float64
        Values ``>= 0``.

    References
    ----------
    A. McCallum and K. Nigam, "Employing EM and pool-based active learning for
    text classification", ICML 1998.
    """
    if reduction not in ("mean", "max"):
        raise StrategyError(
            f"reduction must be 'mean' or 'max', got {reduction!r}; "
            "use 'mean' for the divergence to the mean, 'max' for the most divergent member"
        )
    p = as_committee_probabilities(committee_probabilities)
    n_members = p.shape[0]
    if p.shape[1] == 0:
        return np.empty(0, dtype=np.float64)
    # KL(p_m || S / M) = sum_c rel_entr(M p_m, S) / M with S the sum over members.
    # The sum is used instead of the mean because dividing a subnormal
    # probability by M can round to 0, which would make the divergence inf.
    # S >= p_m exactly in floating point, so S > 0 wherever p_m > 0.
    member_sum = p.sum(axis=0)
    divergences = rel_entr(n_members * p, member_sum).sum(axis=2) / n_members  # (M, n_rows)
    if reduction == "mean":
        combined = divergences.mean(axis=0)
    else:
        combined = divergences.max(axis=0)
    # A divergence is >= 0, and only rounding can push a sum of terms below it.
    return np.maximum(combined, 0.0)


def bald(committee_probabilities: np.ndarray) -> np.ndarray:
    """Compute the mutual information between the prediction and the committee member per row, in nats.

    This is the ensemble form of BALD: ``H(consensus) - mean_m H(p_m)``, each
    member taken as an equally likely draw of the model. Values below 0 from
    rounding are set to 0.

    Parameters
    ----------
    committee_probabilities : array of shape (n_members, n_rows, n_classes)

    Returns
    -------
    ndarray of shape (n_rows,), float64
        Values in ``[0, ln min(n_members, n_classes)]``.

    References
    ----------
    N. Houlsby, F. Huszár, Z. Ghahramani and M. Lengyel, "Bayesian active
    learning for classification and preference learning", arXiv:1112.5745, 2011.
    """
    p = as_committee_probabilities(committee_probabilities)
    if p.shape[1] == 0:
        return np.empty(0, dtype=np.float64)
    consensus = entr(p.mean(axis=0)).sum(axis=1)
    mean_member = entr(p).sum(axis=2).mean(axis=0)
    return np.maximum(consensus - mean_member, 0.0)


def align_member_probabilities(
    probabilities: np.ndarray, member_classes: np.ndarray, n_classes: int
) -> np.ndarray:
    """Place a member's probability columns at their committee class indices.

    A member trained on a subset of the classes predicts only those. Column
    ``j`` of ``probabilities`` is the committee class ``member_classes[j]``,
    and every class the member never saw gets probability 0. Values are copied,
    not validated: the committee measures check and renormalise them.

    Parameters
    ----------
    probabilities : array of shape (n_rows, n_member_classes)
        The member's ``predict_proba`` output.
    member_classes : int array of shape (n_member_classes,)
        Distinct committee class indices in ``[0, n_classes)``, one per column,
        sorted as a scikit-learn ``classes_`` maps to them.
    n_classes : int
        Number of classes in the committee.

    Returns
    -------
    ndarray of shape (n_rows, n_classes), float64
    """
    if isinstance(n_classes, bool):
        raise StrategyError(
            f"n_classes must be an integer, got {n_classes!r}; pass the committee's class count"
        )
    try:
        n_classes = operator.index(n_classes)
    except TypeError:
        raise StrategyError(
            f"n_classes must be an integer, got {n_classes!r}; pass the committee's class count"
        ) from None
    if n_classes < 1:
        raise StrategyError(f"n_classes must be >= 1, got {n_classes}")

    p = np.array(probabilities, dtype=np.float64, copy=True)
    if p.ndim != 2:
        raise StrategyError(
            f"probabilities must have shape (n_rows, n_member_classes), got {p.shape}"
        )

    classes = np.asarray(member_classes)
    if classes.ndim != 1 or classes.size == 0:
        raise StrategyError(
            f"member_classes must be a non-empty 1-D array of class indices, got shape {classes.shape}"
        )
    if classes.dtype.kind not in "iu":
        raise StrategyError(
            f"member_classes must hold integer class indices, got dtype {classes.dtype}; "
            "map the member's classes_ labels to committee class indices first"
        )
    if classes.min() < 0 or classes.max() >= n_classes:
        raise StrategyError(
            f"member_classes must lie in [0, {n_classes}), got values from "
            f"{classes.min()} to {classes.max()}; pass indices into the committee's classes"
        )
    if np.unique(classes).size != classes.size:
        raise StrategyError(
            f"member_classes must be distinct, got {classes.tolist()}; "
            "each probability column belongs to one class"
        )
    if p.shape[1] != classes.size:
        raise StrategyError(
            f"probabilities have {p.shape[1]} columns but member_classes names "
            f"{classes.size} classes; pass the classes_ of the member that made these probabilities"
        )

    aligned = np.zeros((p.shape[0], n_classes), dtype=np.float64)
    aligned[:, classes] = p
    return aligned
