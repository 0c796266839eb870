"""Aggregation of several annotators' votes into one label per row.

Two methods are offered. :func:`majority_vote` counts votes per row and breaks
ties by a rule. :func:`dawid_skene` estimates each annotator's confusion matrix
and the class prior by expectation maximisation, so a reliable annotator
outweighs several careless ones. :func:`aggregate` picks between them.

Every function here is pure: the result depends on the set of votes, never on
their order, and random tie-breaks are seeded by ``(seed, row_id)``.
"""

from __future__ import annotations

import logging
import math
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import sparse
from scipy.special import logsumexp

from al_ray.errors import ConfigError, DataError
from al_ray.seeding import derive_seed

__all__ = [
    "AGGREGATION_METHODS",
    "TIE_RULES",
    "Aggregate",
    "DawidSkeneResult",
    "Vote",
    "aggregate",
    "check_votes",
    "dawid_skene",
    "majority_vote",
    "select_method",
]

logger = logging.getLogger(__name__)

TIE_RULES: tuple[str, ...] = ("defer", "first", "random")
"""Tie rules: ``defer`` leaves the row unresolved, ``first`` takes the tied label
voted earliest, ``random`` draws one tied label with a seeded generator."""

AGGREGATION_METHODS: tuple[str, ...] = ("auto", "majority", "dawid_skene")

# Posteriors closer than this count as tied in Dawid-Skene, so a float rounding
# difference does not decide between two equally likely classes.
_POSTERIOR_TIE_TOLERANCE = 1e-9

# spawn_key entries of numpy.random.SeedSequence must be non-negative, so a
# negative row_id is mapped to its two's-complement bit pattern.
_UINT64_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Vote:
    """One annotator's label for one pool row."""

    row_id: int
    """Stable identity of the pool row."""

    annotator: str
    """Annotator id, non-empty (``"alice"``, ``"labelstudio:12"``)."""

    label: str
    """Class name, non-empty."""

    answered_at: float = 0.0
    """When the vote was given, in unix seconds; the ``first`` tie rule uses it."""

    def __post_init__(self) -> None:
        if isinstance(self.row_id, bool):
            raise DataError(f"Vote.row_id must be an integer, got the bool {self.row_id!r}.")
        try:
            row_id = operator.index(self.row_id)
        except TypeError:
            raise DataError(
                f"Vote.row_id must be an integer, got {self.row_id!r} "
                f"of type {type(self.row_id).__name__}."
            ) from None
        object.__setattr__(self, "row_id", row_id)
        if not isinstance(self.annotator, str) or not self.annotator:
            raise DataError(
                f"Vote.annotator for row_id {row_id} must be a non-empty string, "
                f"got {self.annotator!r}."
            )
        if not isinstance(self.label, str) or not self.label:
            raise DataError(
                f"Vote.label for row_id {row_id} must be a non-empty string (the class name), "
                f"got {self.label!r}. Convert class names with str()."
            )
        try:
            answered_at = float(self.answered_at)
        except (TypeError, ValueError):
            answered_at = math.nan
        if not math.isfinite(answered_at):
            raise DataError(
                f"Vote.answered_at for row_id {row_id} must be finite unix seconds, "
                f"got {self.answered_at!r}."
            )
        object.__setattr__(self, "answered_at", answered_at)


@dataclass(frozen=True)
class Aggregate:
    """The label agreed for one row, with the evidence behind it."""

    row_id: int
    """Stable identity of the pool row."""

    label: str | None
    """Agreed class name; ``None`` when a tie was deferred to one more annotator."""

    n_votes: int
    """Number of votes the row received."""

    confidence: float
    """Share of votes for the winning label (majority), or its posterior
    probability (Dawid-Skene); in ``[0, 1]``."""

    tied: bool
    """True when two or more labels shared the top count or posterior, even when
    the tie rule then picked one of them."""


@dataclass(frozen=True)
class DawidSkeneResult:
    """Estimates of one Dawid-Skene fit."""

    classes: tuple[str, ...]
    """Class names, the order of every class axis below."""

    posteriors: dict[int, np.ndarray]
    """row_id to the posterior probability of each class, shape ``(n_classes,)``, summing to 1."""

    confusion: dict[str, np.ndarray]
    """Annotator id to its confusion matrix, shape ``(n_classes, n_classes)``:
    entry ``[k, l]`` is the probability that the annotator gives label ``l``
    when the true class is ``k``. Each row sums to 1."""

    class_prior: np.ndarray
    """Estimated share of each true class, shape ``(n_classes,)``, summing to 1."""

    iterations: int
    """EM iterations run."""

    converged: bool
    """True when the largest change of a posterior fell below ``tol`` within ``max_iter``."""


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    names = tuple(classes)
    if not names:
        raise DataError("classes must name at least one class, got an empty sequence.")
    not_strings = [name for name in names if not isinstance(name, str) or not name]
    if not_strings:
        raise DataError(
            f"classes must be non-empty strings, got {not_strings[:5]!r}. "
            "Convert class names with str()."
        )
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise DataError(f"classes must be unique, got repeats: {repeated[:5]!r}.")
    return names


def check_votes(votes: Iterable[Vote], classes: Sequence[str] | None = None) -> list[Vote]:
    """Validate votes and return them sorted by ``(row_id, annotator)``.

    Raises:
        DataError: If an item is not a :class:`Vote`, an annotator voted twice
            on one row, or a label is not among ``classes`` (when given).
    """
    checked = list(votes)
    for vote in checked:
        if not isinstance(vote, Vote):
            raise DataError(
                f"votes must be Vote objects, got {vote!r} of type {type(vote).__name__}."
            )
    checked.sort(key=lambda vote: (vote.row_id, vote.annotator))
    for previous, current in pairwise(checked):
        if (previous.row_id, previous.annotator) == (current.row_id, current.annotator):
            raise DataError(
                f"annotator {current.annotator!r} voted twice on row_id {current.row_id} "
                f"(labels {previous.label!r} and {current.label!r}). Pass one vote per "
                "annotator and row, for example the latest."
            )
    if classes is not None:
        allowed = set(_check_classes(classes))
        for vote in checked:
            if vote.label not in allowed:
                raise DataError(
                    f"label {vote.label!r} of annotator {vote.annotator!r} on row_id "
                    f"{vote.row_id} is not a class; classes are {sorted(allowed)!r}. "
                    "Drop the vote or add the class to the run's class set."
                )
    return checked


def _check_tie_rule(tie_rule: str) -> None:
    if tie_rule not in TIE_RULES:
        raise ConfigError(
            f"tie_rule must be one of {list(TIE_RULES)}, got {tie_rule!r}. "
            "Set labeling.tie_rule to one of them."
        )


def _group_by_row(votes: Sequence[Vote]) -> dict[int, list[Vote]]:
    groups: dict[int, list[Vote]] = defaultdict(list)
    for vote in votes:
        groups[vote.row_id].append(vote)
    return groups


def _break_tie(
    row_id: int,
    candidates: Sequence[str],
    row_votes: Sequence[Vote],
    tie_rule: str,
    seed: int,
    class_order: Sequence[str] | None,
) -> str | None:
    """Pick one of ``candidates`` (two or more labels) by ``tie_rule``, or None for defer."""
    if tie_rule == "defer":
        return None

    if class_order is not None:
        rank = {name: index for index, name in enumerate(class_order)}
        ordered = sorted(candidates, key=lambda label: (rank.get(label, len(rank)), label))
    else:
        ordered = sorted(candidates)

    if tie_rule == "first":
        # Earliest vote per label; equal times fall back to class order, so the
        # result does not depend on the order the votes arrived in.
        earliest = {label: math.inf for label in ordered}
        for vote in row_votes:
            if vote.label in earliest:
                earliest[vote.label] = min(earliest[vote.label], vote.answered_at)
        return min(ordered, key=lambda label: (earliest[label], ordered.index(label)))

    rng = np.random.default_rng(derive_seed(seed, "labeling.tie_break", row_id & _UINT64_MASK))
    return ordered[int(rng.integers(len(ordered)))]


def majority_vote(
    votes: Iterable[Vote],
    *,
    tie_rule: str = "defer",
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> dict[int, Aggregate]:
    """Aggregate votes per row by plurality.

    Args:
        votes: Votes of any number of rows, at most one per annotator and row.
        tie_rule: ``"defer"`` returns ``label=None`` for a tied row, so the caller
            can ask one more annotator. ``"first"`` takes the tied label whose
            earliest vote has the smallest ``answered_at``, then the one that
            comes first in ``classes`` (or in string order). ``"random"`` draws
            one tied label with a generator seeded by ``(seed, row_id)``.
        seed: Root seed of the run, used by the ``random`` rule.
        classes: Class names; when given, every label must be one of them.

    Returns:
        row_id to its :class:`Aggregate`, in ascending row_id order.

    Raises:
        ConfigError: If ``tie_rule`` is unknown.
        DataError: If an annotator voted twice on a row or a label is not a class.
    """
    _check_tie_rule(tie_rule)
    checked = check_votes(votes, classes)
    class_order = _check_classes(classes) if classes is not None else None

    results: dict[int, Aggregate] = {}
    for row_id, row_votes in sorted(_group_by_row(checked).items()):
        counts = Counter(vote.label for vote in row_votes)
        top_count = max(counts.values())
        leaders = [label for label, count in counts.items() if count == top_count]
        tied = len(leaders) > 1
        if tied:
            label = _break_tie(row_id, leaders, row_votes, tie_rule, seed, class_order)
        else:
            label = leaders[0]
        results[row_id] = Aggregate(
            row_id=row_id,
            label=label,
            n_votes=len(row_votes),
            confidence=top_count / len(row_votes),
            tied=tied,
        )
    return results


def _check_em_settings(max_iter: int, tol: float, prior: float) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ConfigError(f"max_iter must be an integer >= 1, got {max_iter!r}.")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ConfigError(f"tol must be a finite number > 0, got {tol!r}.")
    if not (isinstance(prior, (int, float)) and math.isfinite(prior) and prior > 0):
        raise ConfigError(
            f"prior must be a finite number > 0, got {prior!r}. A zero prior leaves "
            "confusion cells that no vote reached at probability 0, whose log is -inf."
        )


def dawid_skene(
    votes: Iterable[Vote],
    classes: Sequence[str],
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    prior: float = 0.01,
) -> DawidSkeneResult:
    """Estimate true-class posteriors and annotator confusion matrices by EM.

    The model is that of Dawid & Skene (1979), "Maximum likelihood estimation
    of observer error-rates using the EM algorithm", Applied Statistics 28(1).
    Each row has one true class drawn from the class prior. Given that class,
    each annotator labels the row independently, with the probabilities in
    the annotator's confusion matrix. EM starts from the majority-vote shares of
    each row (the soft labels) and alternates two steps:

    - M-step: ``class_prior[k] = (sum_i T[i, k] + prior) / (n_rows + K * prior)``
      and ``confusion[a, k, l] = (prior + sum of T[i, k] over rows i where a
      answered l) / (K * prior + sum of T[i, k] over rows a answered)``.
      The additive ``prior`` (a symmetric Dirichlet pseudo-count) keeps every
      cell above zero, so a label an annotator never gave for a class does not
      rule that class out.
    - E-step: ``log T[i, k] = log class_prior[k] + sum over votes (a, l) on row i
      of log confusion[a, k, l]``, normalised with log-sum-exp.

    Args:
        votes: Votes of any number of rows, at most one per annotator and row.
            Votes on rows already resolved still help to estimate the
            confusion matrices, so pass them too.
        classes: Class names; every label must be one of them.
        max_iter: Most EM iterations to run.
        tol: Stop when no posterior changes by more than this between iterations.
        prior: Pseudo-count added to every confusion cell and class count, > 0.

    Returns:
        The estimates; empty dicts when ``votes`` is empty.

    Raises:
        ConfigError: If ``max_iter``, ``tol`` or ``prior`` is out of range.
        DataError: If an annotator voted twice on a row or a label is not a class.
    """
    class_names = _check_classes(classes)
    _check_em_settings(max_iter, tol, prior)
    checked = check_votes(votes, class_names)
    n_classes = len(class_names)

    if not checked:
        return DawidSkeneResult(
            classes=class_names,
            posteriors={},
            confusion={},
            class_prior=np.full(n_classes, 1.0 / n_classes),
            iterations=0,
            converged=True,
        )

    row_ids = sorted({vote.row_id for vote in checked})
    annotators = sorted({vote.annotator for vote in checked})
    row_index = {row_id: index for index, row_id in enumerate(row_ids)}
    annotator_index = {name: index for index, name in enumerate(annotators)}
    class_index = {name: index for index, name in enumerate(class_names)}

    # One entry per vote, shape (n_votes,); votes are sorted, so sums run in a fixed order.
    vote_rows = np.array([row_index[vote.row_id] for vote in checked], dtype=np.int64)
    vote_annotators = np.array([annotator_index[vote.annotator] for vote in checked], dtype=np.int64)
    vote_labels = np.array([class_index[vote.label] for vote in checked], dtype=np.int64)
    n_rows, n_annotators = len(row_ids), len(annotators)

    # answered[a * K + l, i] is 1 when annotator a gave label l to row i,
    # shape (n_annotators * n_classes, n_rows). Both EM steps are products with it.
    answered = sparse.csr_matrix(
        (np.ones(len(checked)), (vote_annotators * n_classes + vote_labels, vote_rows)),
        shape=(n_annotators * n_classes, n_rows),
    )

    # Soft majority labels, shape (n_rows, n_classes): the share of each row's votes per class.
    posteriors = np.asarray(
        answered.T @ np.tile(np.eye(n_classes), (n_annotators, 1)), dtype=np.float64
    )
    posteriors /= posteriors.sum(axis=1, keepdims=True)

    converged = False
    iterations = 0
    class_prior = np.full(n_classes, 1.0 / n_classes)
    confusion = np.full((n_annotators, n_classes, n_classes), 1.0 / n_classes)
    for iterations in range(1, max_iter + 1):
        class_prior = (posteriors.sum(axis=0) + prior) / (n_rows + n_classes * prior)

        # counts[a, k, l]: expected number of rows of true class k that annotator a labeled l.
        counts = np.asarray(answered @ posteriors).reshape(n_annotators, n_classes, n_classes)
        counts = counts.transpose(0, 2, 1)
        confusion = (counts + prior) / (counts.sum(axis=2, keepdims=True) + n_classes * prior)

        # log_confusion[a * K + l, k] = log confusion[a, k, l], shape (n_annotators * K, K).
        log_confusion = np.log(confusion).transpose(0, 2, 1).reshape(-1, n_classes)
        log_joint = np.log(class_prior) + np.asarray(answered.T @ log_confusion)
        updated = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

        change = float(np.max(np.abs(updated - posteriors)))
        posteriors = updated
        if change < tol:
            converged = True
            break

    if not converged:
        logger.warning(
            "Dawid-Skene did not converge in %d iterations (tol %g) on %d votes; "
            "using the last estimates. Raise max_iter if this repeats.",
            max_iter,
            tol,
            len(checked),
        )
    return DawidSkeneResult(
        classes=class_names,
        posteriors={row_id: posteriors[row_index[row_id]] for row_id in row_ids},
        confusion={name: confusion[annotator_index[name]] for name in annotators},
        class_prior=class_prior,
        iterations=iterations,
        converged=converged,
    )


def select_method(
    votes: Sequence[Vote], method: str = "auto", *, min_answers_per_annotator: int = 20
) -> str:
    """Resolve ``method`` to ``"majority"`` or ``"dawid_skene"``.

    ``"auto"`` selects Dawid-Skene when every annotator has at least
    ``min_answers_per_annotator`` votes and some row has two or more votes.
    With fewer votes the confusion matrices are mostly prior, and with one
    vote per row no annotator can be compared with another.

    Raises:
        ConfigError: If ``method`` is unknown or ``min_answers_per_annotator`` < 1.
    """
    if method not in AGGREGATION_METHODS:
        raise ConfigError(
            f"aggregation method must be one of {list(AGGREGATION_METHODS)}, got {method!r}. "
            "Set labeling.aggregation to one of them."
        )
    if method != "auto":
        return method
    if (
        isinstance(min_answers_per_annotator, bool)
        or not isinstance(min_answers_per_annotator, int)
        or min_answers_per_annotator < 1
    ):
        raise ConfigError(
            "min_answers_per_annotator must be an integer >= 1, "
            f"got {min_answers_per_annotator!r}."
        )
    if not votes:
        return "majority"
    per_annotator = Counter(vote.annotator for vote in votes)
    per_row = Counter(vote.row_id for vote in votes)
    enough_answers = min(per_annotator.values()) >= min_answers_per_annotator
    some_overlap = max(per_row.values()) >= 2
    return "dawid_skene" if enough_answers and some_overlap else "majority"


def _aggregate_dawid_skene(
    checked: Sequence[Vote], classes: tuple[str, ...], tie_rule: str, seed: int
) -> dict[int, Aggregate]:
    fit = dawid_skene(checked, classes)
    groups = _group_by_row(checked)
    results: dict[int, Aggregate] = {}
    for row_id, posterior in fit.posteriors.items():
        best = float(posterior.max())
        leaders = [
            classes[index]
            for index in np.flatnonzero(posterior >= best - _POSTERIOR_TIE_TOLERANCE)
        ]
        tied = len(leaders) > 1
        if tied:
            label = _break_tie(row_id, leaders, groups[row_id], tie_rule, seed, classes)
        else:
            label = leaders[0]
        results[row_id] = Aggregate(
            row_id=row_id,
            label=label,
            n_votes=len(groups[row_id]),
            confidence=best,
            tied=tied,
        )
    return results


def aggregate(
    votes: Iterable[Vote],
    classes: Sequence[str],
    *,
    method: str = "auto",
    min_answers_per_annotator: int = 20,
    tie_rule: str = "defer",
    seed: int = 0,
) -> dict[int, Aggregate]:
    """Aggregate votes per row with majority vote or Dawid-Skene.

    Args:
        votes: Votes of any number of rows, at most one per annotator and row.
        classes: Class names; every label must be one of them.
        method: ``"majority"``, ``"dawid_skene"``, or ``"auto"`` (see
            :func:`select_method`, which also names the method actually used).
        min_answers_per_annotator: Votes each annotator needs before ``"auto"``
            selects Dawid-Skene.
        tie_rule: How a tie between labels is settled (see :func:`majority_vote`).
            Dawid-Skene ties are posteriors within 1e-9 of each other.
        seed: Root seed of the run, used by the ``random`` tie rule.

    Returns:
        row_id to its :class:`Aggregate`, in ascending row_id order.
    """
    _check_tie_rule(tie_rule)
    class_names = _check_classes(classes)
    checked = check_votes(votes, class_names)
    chosen = select_method(
        checked, method, min_answers_per_annotator=min_answers_per_annotator
    )
    logger.debug("Aggregating %d votes with %s (requested %s).", len(checked), chosen, method)
    if chosen == "dawid_skene":
        return _aggregate_dawid_skene(checked, class_names, tie_rule, seed)
    return majority_vote(checked, tie_rule=tie_rule, seed=seed, classes=class_names)
