"""A SQLite file of served rows the model was unsure about, for the next round's pool.

The router appends every served row whose margin uncertainty is at least
``feedback.uncertainty_threshold``. Each :meth:`UncertainRowStore.append`
writes its rows in one transaction, so a reader sees all of a request's rows
or none. The file uses WAL journaling, so the loop can read while the router
writes. Features are stored as float64 bytes, so they read back exactly.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event

from al_ray.serving.errors import ServingError

__all__ = ["UncertainRowStore", "UncertainRows"]

logger = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 30_000

_metadata = sa.MetaData()
# SQLite makes only an INTEGER PRIMARY KEY an alias of its rowid, which gives increasing ids.
_rows_table = sa.Table(
    "uncertain_rows",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("row_id", sa.BigInteger, nullable=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("uncertainty", sa.Float, nullable=False),
    sa.Column("n_features", sa.Integer, nullable=False),
    sa.Column("features", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


class UncertainRows(NamedTuple):
    """Rows read from the store, in the order they were written.

    Attributes
    ----------
    ids
        Store ids, shape ``(n_rows,)``, int64, increasing; pass the last one
        to the next :meth:`UncertainRowStore.read_since`.
    row_ids
        The caller's ``row_id`` of each row, or None where the request gave none.
    features
        Shape ``(n_rows, n_features)``, float64; ``(0, 0)`` when no rows were read.
    versions
        Label of the version that served each row.
    """

    ids: np.ndarray
    row_ids: list[int | None]
    features: np.ndarray
    versions: list[str]


class UncertainRowStore:
    """Uncertain served rows in a SQLite file.

    Parameters
    ----------
    path
        The SQLite file; it and its parent folders are created when missing.

    Raises
    ------
    ServingError
        If the file cannot be opened or created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ServingError(
                f"cannot create the folder of feedback store {self.path}: {error}; choose a writable path"
            ) from error
        self._engine = sa.create_engine(sa.URL.create("sqlite", database=str(self.path)))
        event.listen(self._engine, "connect", _set_pragmas)
        try:
            _metadata.create_all(self._engine)
        except sa.exc.DBAPIError as error:
            self._engine.dispose()
            raise ServingError(
                f"cannot open feedback store {self.path}: {error.orig}; "
                "check that the path names a SQLite file in a writable folder on a local disk"
            ) from error

    def append(
        self,
        features: np.ndarray,
        uncertainty: np.ndarray,
        version: str,
        row_ids: list[int] | None = None,
        *,
        created_at: float | None = None,
    ) -> int:
        """Write rows in one transaction and return how many were written.

        Parameters
        ----------
        features
            Shape ``(n_rows, n_features)``, float64.
        uncertainty
            Shape ``(n_rows,)``: each row's margin uncertainty.
        version
            Label of the version that served the rows.
        row_ids
            The caller's ``row_id`` per row, or None.
        created_at
            Unix seconds; defaults to now.
        """
        features = np.ascontiguousarray(features, dtype="<f8")
        if features.ndim != 2 or features.shape[0] != len(uncertainty):
            raise ServingError(
                f"features must have shape (n_rows, n_features) with one uncertainty per row, "
                f"got {features.shape} and {len(uncertainty)} uncertainties"
            )
        if row_ids is not None and len(row_ids) != features.shape[0]:
            raise ServingError(f"got {len(row_ids)} row_ids for {features.shape[0]} rows; give one per row")
        if features.shape[0] == 0:
            return 0
        stamp = time.time() if created_at is None else float(created_at)
        records = [
            {
                "row_id": None if row_ids is None else int(row_ids[index]),
                "version": version,
                "uncertainty": float(uncertainty[index]),
                "n_features": features.shape[1],
                "features": features[index].tobytes(),
                "created_at": stamp,
            }
            for index in range(features.shape[0])
        ]
        with self._engine.begin() as connection:
            connection.execute(_rows_table.insert(), records)
        return len(records)

    def read_since(self, last_id: int = 0, *, limit: int | None = None) -> UncertainRows:
        """Return the rows with a store id greater than ``last_id``, oldest first, at most ``limit``.

        Raises
        ------
        ServingError
            If the rows read have different feature counts (versions with
            different inputs wrote to one store).
        """
        query = sa.select(_rows_table).where(_rows_table.c.id > int(last_id)).order_by(_rows_table.c.id)
        if limit is not None:
            query = query.limit(int(limit))
        with self._engine.connect() as connection:
            records = connection.execute(query).all()
        if not records:
            return UncertainRows(np.empty(0, dtype=np.int64), [], np.empty((0, 0)), [])
        widths = {record.n_features for record in records}
        if len(widths) > 1:
            raise ServingError(
                f"feedback store {self.path} contains rows with {sorted(widths)} features after id {last_id}; "
                "keep one store per feature set"
            )
        features = np.stack([np.frombuffer(record.features, dtype="<f8") for record in records])
        return UncertainRows(
            ids=np.array([record.id for record in records], dtype=np.int64),
            row_ids=[record.row_id for record in records],
            features=features.astype(np.float64),
            versions=[record.version for record in records],
        )

    def count(self) -> int:
        """Return the number of rows stored."""
        with self._engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(_rows_table)).scalar_one())

    def close(self) -> None:
        """Close pooled connections. The store can still be used; it reconnects."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"UncertainRowStore({str(self.path)!r})"


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("feedback store cannot use WAL journaling (SQLite kept %r); readers may wait for writers", mode)
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()
