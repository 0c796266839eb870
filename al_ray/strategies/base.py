"""The query-strategy interface: a measure of utility per row and a selector.

A strategy turns what the scorer supplies for a batch of pool rows into one
utility per row (higher means "ask for this label first"). Scoring keeps the
top ``candidate_factor * n`` rows, and :meth:`QueryStrategy.choose` picks ``n``
of them: the best ones by default, a diverse batch for batch-diverse
strategies. A strategy declares the inputs it needs in ``needs`` and
``candidate_needs``. The scorer computes exactly those, so the loop never has
to know which strategy it runs.

Strategies are pure numpy: they must never import Ray, so they run the same in
a scoring actor, in the driver and in tests.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from al_ray.errors import StrategyError
from al_ray.strategies.selection import Selection, select_top_n

__all__ = ["Need", "QueryStrategy", "ScoringBatch", "SelectionContext", "positions_of"]


class Need(str, enum.Enum):
    """An input that a strategy requests from the scorer for each pool row."""

    PROBABILITIES = "probabilities"
    """Class probabilities of the current model, shape ``(n_rows, n_classes)``."""

    FEATURES = "features"
    """The rows' feature vectors, shape ``(n_rows, n_features)``."""

    COMMITTEE_PROBABILITIES = "committee_probabilities"
    """Each committee member's probabilities, shape ``(n_members, n_rows, n_classes)``."""

    EMBEDDINGS = "embeddings"
    """The model's input to its last linear layer, shape ``(n_rows, n_dims)``.

    For a linear model these are the (scaled) features; for a network, the
    penultimate layer's activations.
    """


@dataclass(frozen=True)
class ScoringBatch:
    """The inputs for one batch of pool rows.

    Only the fields named in the strategy's ``needs`` are guaranteed to be set.
    """

    row_ids: np.ndarray
    """Stable integer identities of the rows, shape ``(n_rows,)``, dtype int64."""

    probabilities: np.ndarray | None = None
    """Class probabilities, shape ``(n_rows, n_classes)``, any float dtype."""

    features: np.ndarray | None = None
    """Feature vectors, shape ``(n_rows, n_features)``."""

    committee_probabilities: np.ndarray | None = None
    """Per-member probabilities, shape ``(n_members, n_rows, n_classes)``."""

    embeddings: np.ndarray | None = None
    """Last-layer inputs, shape ``(n_rows, n_dims)``."""

    def __len__(self) -> int:
        return int(self.row_ids.shape[0])

    def subset(self, rows: np.ndarray) -> "ScoringBatch":
        """Return the rows picked by a boolean mask or an index array, every field aligned."""
        return ScoringBatch(
            row_ids=self.row_ids[rows],
            probabilities=None if self.probabilities is None else self.probabilities[rows],
            features=None if self.features is None else self.features[rows],
            committee_probabilities=(
                None if self.committee_probabilities is None else self.committee_probabilities[:, rows]
            ),
            embeddings=None if self.embeddings is None else self.embeddings[rows],
        )

    def field(self, need: "Need") -> np.ndarray | None:
        """Return the array that contains ``need``, or None when the batch lacks it."""
        return getattr(self, need.value)


@dataclass(frozen=True)
class SelectionContext:
    """Extra inputs that a batch-diverse selector may need beyond the candidates."""

    labeled_features: np.ndarray | None = None
    """Features of every labeled row, shape ``(n_labeled, n_features)``."""

    pool_sample: np.ndarray | None = None
    """Features of a seeded random sample of the pool, shape ``(n_sample, n_features)``."""


class QueryStrategy(ABC):
    """A query strategy: :meth:`utility` is the measure, :meth:`select` and :meth:`choose` the selectors.

    Subclasses set ``name``, ``needs`` and ``description`` and implement
    :meth:`utility`; batch-diverse strategies also override :meth:`choose`.
    The default selector takes the ``n`` highest utilities,
    breaking ties by a key derived from the seed and the ``row_id`` (see
    :func:`~al_ray.strategies.selection.tie_keys`), so the selection does not
    depend on how the pool was split into batches.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[Need]]
    description: ClassVar[str]

    candidate_needs: ClassVar[frozenset[Need]] = frozenset()
    """Inputs kept with each candidate for :meth:`choose` (batch-diverse strategies)."""

    context_needs: ClassVar[frozenset[str]] = frozenset()
    """Fields of :class:`SelectionContext` that :meth:`choose` reads."""

    candidate_factor: int = 1
    """Scoring keeps the top ``candidate_factor * n`` rows by utility as candidates."""

    def __init__(self, **params: Any) -> None:
        if params:
            raise StrategyError(
                f"strategy {self.name!r} takes no parameters, got {sorted(params)}; "
                "remove strategy.params from the config"
            )

    @abstractmethod
    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        """Return one finite float64 utility per row, shape ``(n_rows,)``.

        ``seed`` is the round's selection seed; deterministic measures ignore it.
        Must not modify ``batch``.
        """

    def select(
        self, row_ids: np.ndarray, utilities: np.ndarray, n: int, seed: int
    ) -> Selection:
        """Select up to ``n`` rows from candidates with known utilities, best first."""
        return select_top_n(row_ids, utilities, n, seed)

    def query(
        self,
        batch: ScoringBatch,
        n: int,
        seed: int,
        exclude: np.ndarray | None = None,
        context: SelectionContext | None = None,
    ) -> Selection:
        """Score ``batch`` in this process and select up to ``n`` rows, best first.

        Rows whose ``row_id`` is in ``exclude`` (already labeled or queried) are
        never selected. Fewer than ``n`` rows come back when fewer are left.
        """
        check_batch(batch, self.needs | self.candidate_needs)
        if exclude is not None and len(exclude) > 0:
            batch = batch.subset(~np.isin(batch.row_ids, np.asarray(exclude, dtype=np.int64)))
        utilities = self.utility(batch, seed)
        shortlist = self.select(batch.row_ids, utilities, self.candidate_count(n), seed)
        positions = positions_of(batch.row_ids, shortlist.row_ids)
        return self.choose(batch.subset(positions), shortlist.utilities, n, seed, context or SelectionContext())

    @property
    def needs_model(self) -> bool:
        """True when scoring or choosing needs anything a fitted model computes."""
        return bool((self.needs | self.candidate_needs) - {Need.FEATURES})

    def candidate_count(self, n: int) -> int:
        """Return how many top-utility rows scoring keeps as candidates for ``n`` queries."""
        return n * self.candidate_factor

    def choose(
        self,
        candidates: ScoringBatch,
        utilities: np.ndarray,
        n: int,
        seed: int,
        context: SelectionContext,
    ) -> Selection:
        """Choose up to ``n`` of the candidates, best first.

        ``candidates`` carries the inputs in :attr:`candidate_needs` for each
        candidate, and ``utilities`` their utilities. The default keeps the top
        ``n``; batch-diverse strategies override this to trade utility for
        diversity.
        """
        return self.select(candidates.row_ids, utilities, n, seed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_batch(batch: ScoringBatch, needs: frozenset[Need]) -> None:
    """Raise :class:`StrategyError` unless ``batch`` carries every input in ``needs``."""
    row_ids = np.asarray(batch.row_ids)
    if row_ids.ndim != 1:
        raise StrategyError(f"row_ids must be 1-D, got shape {row_ids.shape}")
    n_rows = row_ids.shape[0]
    for need in needs:
        value = getattr(batch, need.value)
        if value is None:
            raise StrategyError(
                f"this strategy needs {need.value!r} but the batch has none; "
                "the scorer must compute every input the strategy lists in `needs`"
            )
        if need is Need.COMMITTEE_PROBABILITIES:
            if value.ndim != 3 or value.shape[1] != n_rows:
                raise StrategyError(
                    f"{need.value} must have shape (n_members, n_rows={n_rows}, n_classes), got {value.shape}"
                )
        elif value.ndim != 2 or value.shape[0] != n_rows:
            raise StrategyError(
                f"{need.value} must have shape (n_rows={n_rows}, k), got {value.shape}"
            )


def positions_of(row_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Return the positions in ``row_ids`` (distinct) of each id in ``wanted``, in order."""
    order = np.argsort(row_ids, kind="stable")
    found = order[np.searchsorted(row_ids, wanted, sorter=order)]
    return found
