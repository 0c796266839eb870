"""The unlabeled pool as a Ray Data dataset of ``row_id`` and ``features``.

The pool is built once per run. Each round the scorer receives the ids to
exclude (labeled or already queried), so the dataset itself never changes and
its blocks stay in the object store between rounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from al_ray.errors import DataError

if TYPE_CHECKING:
    import ray.data

__all__ = ["Pool", "ROW_ID", "FEATURES"]

ROW_ID = "row_id"
FEATURES = "features"


class Pool:
    """Unlabeled rows held as arrays, exposed in-process or as a Ray dataset.

    Parameters
    ----------
    row_ids : ndarray of shape (n_rows,), int64
    features : ndarray of shape (n_rows, n_features)
    num_blocks : int
        Blocks of the Ray dataset; more blocks than scoring actors keeps them busy.
    """

    def __init__(self, row_ids: np.ndarray, features: np.ndarray, *, num_blocks: int = 8) -> None:
        row_ids = np.asarray(row_ids, dtype=np.int64)
        if features.ndim != 2 or features.shape[0] != row_ids.shape[0]:
            raise DataError(
                f"pool features must have shape (n_rows={row_ids.shape[0]}, n_features), got {features.shape}"
            )
        if num_blocks < 1:
            raise DataError(f"num_blocks must be >= 1, got {num_blocks}")
        self.row_ids = row_ids
        self.features = features
        self.num_blocks = num_blocks
        self._dataset: ray.data.Dataset | None = None

    def __len__(self) -> int:
        return int(self.row_ids.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def iter_local_batches(self, batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(row_ids, features)`` slices of at most ``batch_rows`` rows, without copying."""
        for start in range(0, len(self), batch_rows):
            stop = start + batch_rows
            yield self.row_ids[start:stop], self.features[start:stop]

    def sample(self, rows: int, seed: int) -> np.ndarray:
        """Return the features of up to ``rows`` pool rows drawn without replacement."""
        count = min(rows, len(self))
        picks = np.sort(np.random.default_rng(seed).choice(len(self), size=count, replace=False))
        return self.features[picks]

    def dataset(self) -> "ray.data.Dataset":
        """Return the pool as a materialized Ray dataset with columns ``row_id`` and ``features``.

        Built on first call; the blocks are put in the object store once and
        reused every round.
        """
        if self._dataset is None:
            import pyarrow as pa
            import ray.data
            from ray.data.extensions import ArrowTensorArray

            blocks = max(1, min(self.num_blocks, len(self)))
            tables = [
                pa.table(
                    {
                        ROW_ID: pa.array(self.row_ids[part]),
                        FEATURES: ArrowTensorArray.from_numpy(np.ascontiguousarray(self.features[part])),
                    }
                )
                for part in np.array_split(np.arange(len(self)), blocks)
            ]
            self._dataset = ray.data.from_arrow(tables)
        return self._dataset
