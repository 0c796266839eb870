"""The durable label store: tasks, answers, round state and run metadata.

The store is the only place the loop keeps labels, so a run killed at any point
(SIGKILL included) resumes from what it stores. Every write method runs in one
transaction and either stores all of its input or nothing. The default
back end is a SQLite file in WAL mode with ``synchronous=FULL``, which several
processes may open at once; any other SQLAlchemy URL (PostgreSQL) uses the same
tables.

The tests run on SQLite and on PostgreSQL. On PostgreSQL write transactions
take an advisory lock and so run one at a time, as they do on SQLite.

Rules the store enforces:

- A row is queried at most once per run. Posting a ``row_id`` again in the same
  round is a no-op, so a resumed round can repeat its posting; posting it in
  another round raises.
- The same ``(row_id, annotator, label)`` is stored once; repeats are counted as
  duplicates.
- A second, different label for a row is stored too, never overwritten. The row
  is then conflicted: :meth:`LabelStore.labels` leaves it out and
  :meth:`LabelStore.conflicted_row_ids` lists it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from al_ray.errors import LabelStoreError
from al_ray.labels import _answers, _rounds, _tasks
from al_ray.labels._checks import (
    check_meta_key,
    check_round_index,
    check_row_ids,
    check_utilities,
)
from al_ray.labels._engine import StoreEngines, describe_url, resolve_url
from al_ray.labels._schema import answers_table, ensure_schema, meta_table, tasks_table
from al_ray.labels.types import ANSWERED, TASK_STATUSES, AddAnswersResult, Answer, Task

__all__ = ["LabelStore"]

logger = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite connection waits for another process's write lock."""


class LabelStore:
    """Tasks, answers, round state and metadata of one run, in one database.

    Parameters
    ----------
    url_or_path
        A SQLAlchemy URL (``"sqlite:///runs/mnist/labels.db"``,
        ``"postgresql+psycopg://..."``) or a path to a SQLite file. Missing
        parent folders and tables are created.
    busy_timeout_s
        Seconds a SQLite connection waits for another process's write lock
        before failing with "database is locked".

    Raises
    ------
    LabelStoreError
        If the location is not a valid URL or path, or the database cannot be
        opened, created or written.

    Examples
    --------
    >>> with LabelStore(tmp_path / "labels.db") as store:  # doctest: +SKIP
    ...     store.post_tasks(0, [17, 4])
    ...     store.add_answers([Answer(17, "7", "oracle", time.time())])
    """

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        valid_timeout = (
            isinstance(busy_timeout_s, (int, float))
            and not isinstance(busy_timeout_s, bool)
            and math.isfinite(busy_timeout_s)
            and busy_timeout_s > 0
        )
        if not valid_timeout:
            raise LabelStoreError(
                f"busy_timeout_s must be a positive number of seconds, got {busy_timeout_s!r}."
            )
        self._closed = True
        url = resolve_url(url_or_path)
        self._location = describe_url(url)
        self._busy_timeout_s = float(busy_timeout_s)
        # Threads of this process queue here before asking the database for
        # its write lock. SQLite's default busy handler (sqliteDefaultBusyCallback
        # in its main.c) retries after sleeps growing from 1 to 100 ms, which
        # adds up to that much latency to every contended write.
        self._write_lock = threading.Lock()
        self._engines = StoreEngines(url, self._busy_timeout_s)
        try:
            with self._engines.write.begin() as connection:
                ensure_schema(connection, self._location)
        except sa.exc.DBAPIError as error:
            self._engines.dispose()
            if self._engines.is_sqlite:
                hint = (
                    "Check that the path names a SQLite file (or nothing yet) in a folder this "
                    "user can write, or pass another path."
                )
            else:
                hint = (
                    "Check that the database server is running and reachable at this URL and "
                    "that the user may create tables in the database."
                )
            raise LabelStoreError(
                f"Cannot open label store {self._location!r}: {error.orig}. {hint}"
            ) from error
        except BaseException:
            self._engines.dispose()
            raise
        self._closed = False
        logger.debug("Opened label store %s", self._location)

    @property
    def location(self) -> str:
        """File path of a SQLite store, or the URL with its password hidden."""
        return self._location

    def close(self) -> None:
        """Close every pooled connection. Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        self._engines.dispose()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"LabelStore({self._location!r}, {state})"

    # Tasks

    def post_tasks(
        self,
        round_index: int,
        row_ids: Sequence[int],
        utilities: Sequence[float] | None = None,
        model_version: str | None = None,
    ) -> int:
        """Post one task per row for ``round_index``, in the given (best-first) order.

        Parameters
        ----------
        round_index
            Round that selected the rows, ``>= 0``.
        row_ids
            Rows to query, shape ``(n,)``, all distinct. Their order is kept as
            the task order of the round.
        utilities
            Utility of each row, shape ``(n,)``. NaN is stored as missing.
        model_version
            Version of the model that scored the rows.

        Returns
        -------
        int
            Number of tasks that were new. Rows already posted in this round
            are skipped, so re-posting a round after a resume returns 0.

        Raises
        ------
        LabelStoreError
            If ``row_ids`` repeats a row, a row already has a task from another
            round, or the lengths differ. Nothing is stored then.
        """
        round_index = check_round_index(round_index)
        ids = check_row_ids(row_ids)
        utility_values = check_utilities(utilities, len(ids))
        if model_version is not None and not isinstance(model_version, str):
            raise LabelStoreError(
                f"model_version must be a string or None, got {model_version!r}."
            )
        if not ids:
            return 0

        with self._write("post tasks") as connection:
            n_new = _tasks.insert_tasks(
                connection, round_index, ids, utility_values, model_version, time.time()
            )
        logger.debug(
            "Posted %d new tasks in round %d (%d already posted)",
            n_new, round_index, len(ids) - n_new,
        )
        return n_new

    def tasks(self, round_index: int | None = None, status: str | None = None) -> list[Task]:
        """Return tasks ordered by round, then by their rank in the round's posting.

        Parameters
        ----------
        round_index
            Only tasks of this round, or all rounds when ``None``.
        status
            Only tasks with this status (``"pending"`` or ``"answered"``), or all when ``None``.
        """
        statement = sa.select(tasks_table).order_by(
            tasks_table.c.round_index, tasks_table.c.position
        )
        if round_index is not None:
            statement = statement.where(
                tasks_table.c.round_index == check_round_index(round_index)
            )
        if status is not None:
            if status not in TASK_STATUSES:
                raise LabelStoreError(
                    f"Task status must be one of {list(TASK_STATUSES)} or None, got {status!r}."
                )
            statement = statement.where(tasks_table.c.status == status)

        with self._read("read tasks") as connection:
            rows = connection.execute(statement).all()
        return [
            Task(
                row_id=row.row_id,
                round_index=row.round_index,
                utility=row.utility,
                model_version=row.model_version,
                status=row.status,
            )
            for row in rows
        ]

    def queried_row_ids(self, before_round: int | None = None) -> np.ndarray:
        """Return every row that has a task, ascending, shape ``(n,)``, int64.

        Parameters
        ----------
        before_round
            Only rows queried in rounds below this index; all rounds when
            ``None``. A round resumed after a crash between posting its tasks
            and marking itself queried excludes only the earlier rounds' rows,
            so its selection comes out the same and re-posting it is a no-op.
        """
        statement = sa.select(tasks_table.c.row_id).order_by(tasks_table.c.row_id)
        if before_round is not None:
            statement = statement.where(
                tasks_table.c.round_index < check_round_index(before_round)
            )
        with self._read("read queried rows") as connection:
            row_ids = connection.execute(statement).scalars().all()
        return np.asarray(row_ids, dtype=np.int64)

    def count_answered(self) -> int:
        """Return the number of tasks with at least one stored answer."""
        statement = sa.select(sa.func.count()).where(tasks_table.c.status == ANSWERED)
        with self._read("count answered tasks") as connection:
            return int(connection.execute(statement).scalar_one())

    # Answers

    def add_answers(self, answers: Iterable[Answer]) -> AddAnswersResult:
        """Store answers and mark their tasks answered, in one transaction.

        An answer whose ``(row_id, annotator, label)`` is already stored, or
        repeated within ``answers``, is skipped and counted as a duplicate. An
        answer whose label differs from one already stored for the row is
        stored, and the row is reported in ``conflicts`` and logged at WARNING.

        Raises
        ------
        LabelStoreError
            If an answer is not an :class:`Answer` or names a row that has no
            task. Nothing from the call is stored then.
        """
        batch = list(answers)
        for answer in batch:
            if not isinstance(answer, Answer):
                raise LabelStoreError(
                    f"add_answers takes Answer objects, got {answer!r} of type "
                    f"{type(answer).__name__}."
                )
        if not batch:
            return AddAnswersResult(stored=0, duplicates=0, conflicts=[])

        with self._write("add answers") as connection:
            outcome = _answers.store_answers(connection, batch, time.time())

        conflicts = outcome.conflicts()
        for row_id in conflicts:
            logger.warning(
                "row_id %d now has conflicting labels %s, so it is left out of labels() and "
                "listed by conflicted_row_ids()",
                row_id, sorted(outcome.labels_by_row[row_id]),
            )
        return AddAnswersResult(
            stored=outcome.stored, duplicates=outcome.duplicates, conflicts=conflicts
        )

    def labels(self) -> dict[int, str]:
        """Return the label of every answered row whose answers all agree, keyed by ``row_id``.

        Conflicted rows are left out, and :meth:`conflicted_row_ids` lists them.
        """
        statement = (
            sa.select(answers_table.c.row_id, sa.func.min(answers_table.c.label))
            .group_by(answers_table.c.row_id)
            .having(sa.func.count(sa.distinct(answers_table.c.label)) == 1)
            .order_by(answers_table.c.row_id)
        )
        with self._read("read labels") as connection:
            rows = connection.execute(statement).all()
        return {row_id: label for row_id, label in rows}

    def conflicted_row_ids(self) -> list[int]:
        """Return, ascending, the rows whose stored answers contain two or more different labels."""
        statement = (
            sa.select(answers_table.c.row_id)
            .group_by(answers_table.c.row_id)
            .having(sa.func.count(sa.distinct(answers_table.c.label)) > 1)
            .order_by(answers_table.c.row_id)
        )
        with self._read("read conflicted rows") as connection:
            return list(connection.execute(statement).scalars().all())

    def answers(self, row_id: int | None = None) -> list[Answer]:
        """Return stored answers in the order they were stored, for one row or for all."""
        statement = sa.select(answers_table).order_by(answers_table.c.answer_id)
        if row_id is not None:
            statement = statement.where(answers_table.c.row_id == check_row_ids([row_id])[0])
        with self._read("read answers") as connection:
            rows = connection.execute(statement).all()
        return [
            Answer(
                row_id=row.row_id,
                label=row.label,
                annotator=row.annotator,
                answered_at=row.answered_at,
            )
            for row in rows
        ]

    # Round state

    def begin_round(self, round_index: int) -> None:
        """Store ``round_index`` as started. A round already started or queried is left as it is.

        Raises
        ------
        LabelStoreError
            If the round is completed, another round is still open, or the
            index is not above the last completed round.
        """
        round_index = check_round_index(round_index)
        with self._write("begin a round") as connection:
            _rounds.begin_round(connection, round_index, time.time())

    def mark_round_queried(self, round_index: int) -> None:
        """Store that every task of ``round_index`` is posted. Repeating it is a no-op."""
        round_index = check_round_index(round_index)
        with self._write("mark a round queried") as connection:
            _rounds.mark_round_queried(connection, round_index, time.time())

    def complete_round(
        self,
        round_index: int,
        metrics: Mapping[str, float],
        model_path: str | None = None,
    ) -> None:
        """Store ``round_index`` as completed, with its metrics and the path of its model.

        Completing a completed round again is a no-op when the metrics and the
        model path are equal, and raises :class:`LabelStoreError` otherwise.
        """
        round_index = check_round_index(round_index)
        metrics_json = _rounds.encode_metrics(round_index, metrics)
        if model_path is not None and not isinstance(model_path, str):
            raise LabelStoreError(
                f"model_path of round {round_index} must be a string or None, got {model_path!r}."
            )
        with self._write("complete a round") as connection:
            _rounds.complete_round(connection, round_index, metrics_json, model_path, time.time())

    def last_completed_round(self) -> int | None:
        """Return the highest completed round index, or ``None`` before the first."""
        with self._read("read round state") as connection:
            return _rounds.last_completed_round(connection)

    def round_status(self, round_index: int) -> str | None:
        """Return ``"started"``, ``"queried"``, ``"completed"``, or ``None`` if never begun."""
        round_index = check_round_index(round_index)
        with self._read("read round state") as connection:
            return _rounds.round_status(connection, round_index)

    def round_records(self) -> list[dict[str, Any]]:
        """Return every round ordered by index.

        Each record has the keys ``round_index``, ``status``, ``metrics`` (a
        dict, empty until the round completes), ``model_path``, ``started_at``,
        ``queried_at`` and ``completed_at`` (unix seconds or ``None``).
        """
        with self._read("read round state") as connection:
            return _rounds.round_records(connection)

    # Metadata

    def get_meta(self, key: str) -> str | None:
        """Return the value stored under ``key``, or ``None``."""
        key = check_meta_key(key)
        statement = sa.select(meta_table.c.value).where(meta_table.c.key == key)
        with self._read("read metadata") as connection:
            return connection.execute(statement).scalar_one_or_none()

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any earlier value."""
        key = check_meta_key(key)
        if not isinstance(value, str):
            raise LabelStoreError(
                f"Metadata value for {key!r} must be a string, got {value!r} of type "
                f"{type(value).__name__}. Encode it first, for example with json.dumps."
            )
        with self._write("write metadata") as connection:
            dialect = connection.dialect.name
            if dialect in ("sqlite", "postgresql"):
                insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
                statement = insert(meta_table).values(key=key, value=value)
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[meta_table.c.key], set_={"value": value}
                    )
                )
                return
            updated = connection.execute(
                sa.update(meta_table).where(meta_table.c.key == key).values(value=value)
            )
            if updated.rowcount == 0:
                connection.execute(sa.insert(meta_table).values(key=key, value=value))

    # Transactions for tables kept beside the store's own

    @contextmanager
    def read_transaction(self, action: str) -> Iterator[sa.Connection]:
        """Yield a connection for reads, for packages that keep their own tables in this database.

        ``action`` completes the message of a database error, as in
        "Failed to <action> in label store ...". A database error is raised
        as :class:`LabelStoreError`.
        """
        with self._read(action) as connection:
            yield connection

    @contextmanager
    def write_transaction(self, action: str) -> Iterator[sa.Connection]:
        """Yield a connection in a write transaction that commits on exit and rolls back on error.

        Write transactions run one at a time, across threads and processes:
        SQLite takes its write lock at ``BEGIN IMMEDIATE`` and PostgreSQL an
        advisory lock, so code inside may read, decide and write without a race.
        A database error is raised as :class:`LabelStoreError`.
        """
        with self._write(action) as connection:
            yield connection

    # Helpers

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        self._check_open()
        try:
            with self._engines.read.connect() as connection:
                yield connection
        except sa.exc.DBAPIError as error:
            raise self._database_error(action, error) from error

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        self._check_open()
        if not self._write_lock.acquire(timeout=self._busy_timeout_s):
            raise LabelStoreError(
                f"Failed to {action} in label store {self._location!r}: timed out after "
                f"{self._busy_timeout_s:g} s waiting for another thread's write transaction. "
                "Keep write transactions short, and do not start one inside another."
            )
        try:
            with self._engines.write.begin() as connection:
                yield connection
        except sa.exc.DBAPIError as error:
            raise self._database_error(action, error) from error
        finally:
            self._write_lock.release()

    def _check_open(self) -> None:
        if self._closed:
            raise LabelStoreError(
                f"Label store {self._location!r} is closed. Open a new LabelStore to use it."
            )

    def _database_error(self, action: str, error: sa.exc.DBAPIError) -> LabelStoreError:
        if self._engines.is_sqlite:
            hint = (
                "Check that the file is writable and the disk is not full. 'database is locked' "
                f"means another process held the write lock for more than "
                f"{self._busy_timeout_s:g} s."
            )
        else:
            hint = "Check that the database server is reachable and this user may write to it."
        return LabelStoreError(
            f"Failed to {action} in label store {self._location!r}: {error.orig}. {hint}"
        )
