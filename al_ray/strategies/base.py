"""The query-strategy interface: a measure of utility per row and a selector.

A strategy turns what the scorer supplies for a batch of pool rows into one
utility per row (higher means "ask for this label first"), then selects the
``n`` best rows. It declares the inputs it needs in :attr:`QueryStrategy.needs`;
the scorer computes exactly those and nothing else, so the loop never has to
know which strategy it runs.

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

__all__ = ["Need", "QueryStrategy", "ScoringBatch"]


class Need(str, enum.Enum):
    """An input that a strategy asks the scorer to compute for each pool row."""

    PROBABILITIES = "probabilities"
    """Class probabilities of the current model, shape ``(n_rows, n_classes)``."""

    FEATURES = "features"
    """The rows' feature vectors, shape ``(n_rows, n_features)``."""


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

    def __len__(self) -> int:
        return int(self.row_ids.shape[0])

    def subset(self, mask: np.ndarray) -> "ScoringBatch":
        """Return the rows where ``mask`` is true, keeping every field aligned."""
        return ScoringBatch(
            row_ids=self.row_ids[mask],
            probabilities=None if self.probabilities is None else self.probabilities[mask],
            features=None if self.features is None else self.features[mask],
        )


class QueryStrategy(ABC):
    """A query strategy: :meth:`utility` is the measure, :meth:`select` the selector.

    Subclasses set ``name``, ``needs`` and ``description`` and implement
    :meth:`utility`. The default selector takes the ``n`` highest utilities,
    breaking ties by a key derived from the seed and the ``row_id`` (see
    :func:`~al_ray.strategies.selection.tie_keys`), so the selection does not
    depend on how the pool was split into batches.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[Need]]
    description: ClassVar[str]

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
    ) -> Selection:
        """Score ``batch`` in this process and select up to ``n`` rows, best first.

        Rows whose ``row_id`` is in ``exclude`` (already labeled or queried) are
        never selected. Fewer than ``n`` rows come back when fewer are left.
        """
        check_batch(batch, self.needs)
        if exclude is not None and len(exclude) > 0:
            batch = batch.subset(~np.isin(batch.row_ids, np.asarray(exclude, dtype=np.int64)))
        utilities = self.utility(batch, seed)
        return self.select(batch.row_ids, utilities, n, seed)

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
        if value.ndim != 2 or value.shape[0] != n_rows:
            raise StrategyError(
                f"{need.value} must have shape (n_rows={n_rows}, k), got {value.shape}"
            )
