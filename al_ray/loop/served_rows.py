"""Served rows back into the pool: the uncertain rows the router kept, read each round.

The router appends every served row whose uncertainty passed
``serving.feedback.uncertainty_threshold`` to a SQLite store. Before a query
round, the loop reads the rows added since the last round and adds to the pool
those the label source can label and that may be queried:

- a row whose ``row_id`` is a dataset row outside the pool, the test set and
  the labeled or queried rows joins the pool. An example is a row cut from
  the pool by ``data.pool_size`` that reached the model as live traffic;
- a row already in the pool, labeled or queried is counted and skipped;
- a test row is skipped: querying it would leak the test set into training;
- a row without a dataset ``row_id`` is skipped, because its label and
  features would have no place in the dataset the model trains on.

Every round reads the store from its first row, so a resumed run rebuilds
the same pool. The id of the newest row a round read is kept in the label
store before the round scores, so a round scored again after a crash reads
the same rows even if the router added more since.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from al_ray.data import LabeledData, Split
from al_ray.data.pool import Pool
from al_ray.labels import LabelStore

__all__ = ["ServedRowsIntake"]

logger = logging.getLogger(__name__)


def _limit_key(round_index: int) -> str:
    return f"served_rows.round_{round_index:04d}.last_id"


@dataclass
class ServedRowsIntake:
    """Read the served uncertain rows and extend the pool with those not in it yet."""

    path: str
    data: LabeledData
    split: Split

    def extend(self, pool: Pool, store: LabelStore, round_index: int) -> Pool:
        """Return ``pool`` with the newly served rows that may be queried added, and record what was read."""
        from al_ray.serving.feedback import UncertainRowStore

        served = UncertainRowStore(self.path)
        try:
            rows = served.read_since(0)
        finally:
            served.close()
        stored_limit = store.get_meta(_limit_key(round_index))
        if stored_limit is None:
            limit = int(rows.ids[-1]) if len(rows.ids) else 0
            store.set_meta(_limit_key(round_index), str(limit))
        else:
            limit = int(stored_limit)
        read = int(np.count_nonzero(rows.ids <= limit))
        if read == 0:
            return pool

        known = set(self.data.row_ids.tolist())
        test = set(self.split.test.tolist())
        in_pool = set(pool.row_ids.tolist())
        labeled_or_queried = set(store.queried_row_ids().tolist()) | set(store.labels())
        outcome: Counter[str] = Counter()
        added: list[int] = []
        for row_id in rows.row_ids[:read]:
            if row_id is None or row_id not in known:
                outcome["without a dataset row_id"] += 1
            elif row_id in test:
                outcome["in the test set"] += 1
            elif row_id in in_pool or row_id in labeled_or_queried or row_id in added:
                outcome["already in the pool, labeled or queried"] += 1
            else:
                added.append(row_id)
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(outcome.items())) or "none"
        logger.info(
            "round %d: read %d served rows from %s; %d are in the pool for the first time; skipped: %s",
            round_index, read, self.path, len(added), skipped,
        )
        if not added:
            return pool
        # The dataset's own features, so an added row scores and trains like every other row.
        new_rows = self.data.subset(np.asarray(added, dtype=np.int64))
        return Pool(
            np.concatenate([pool.row_ids, new_rows.row_ids]),
            np.concatenate([pool.features, new_rows.features.astype(pool.features.dtype, copy=False)]),
            num_blocks=pool.num_blocks,
        )
