"""The labeling queue: tasks leased to annotators, their answers, and the aggregated labels.

The loop enqueues the tasks it posted in the label store. Annotators, through
the labeling service, lease one item at a time and answer or skip it. The
loop's human label source calls :meth:`LabelQueue.resolve` to aggregate the
answers of items that have enough of them into one label per row.

Every method runs in one transaction of the label store's database, and the
write transactions run one at a time across threads and processes (see
:meth:`LabelStore.write_transaction`). That keeps these rules true with many
annotators at once:

- An item is never leased to more annotators than it still needs answers.
- An annotator is never leased an item they answered or skipped. An item
  whose lease expired returns to the queue. It may come back to the same
  annotator, after the items they never saw.
- An annotator answers an item once. A second, different answer raises
  :class:`AnswerConflictError` and stores nothing. The same answer again, or
  a repeated ``submission_id``, is reported as not stored.
- Gold items (rows already labeled) are mixed in at ``gold_rate``. Their
  answers measure annotators and never reach training.

With an audit log, every stored answer, including one imported from Label
Studio, gets one ``label`` entry keyed by item and annotator. The entry is
appended after the answer's transaction commits, because the log may live in
another database. If that append fails, the answer stays stored and the
:class:`~al_ray.errors.AuditError` reaches the caller. Sending the same
submission again then appends the missing entry, and never a second one.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from al_ray.labeling import (
    _annotators,
    _audit,
    _enqueueing,
    _gold,
    _importing,
    _leasing,
    _quality,
    _resolving,
)
from al_ray.labeling._annotators import ROLES
from al_ray.labeling._checks import (
    check_annotator_id,
    check_item_id,
    check_label,
    check_new_annotator_id,
    check_submission_id,
    unknown_item,
)
from al_ray.labeling._leasing import ACTIVE, ANSWERED, GOLD, OPEN, SKIPPED, TASK
from al_ray.labeling.aggregation import Vote
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.errors import (
    AnswerConflictError,
    AuthenticationError,
    InvalidLabelError,
    LeaseExpiredError,
    TaskNotYoursError,
)
from al_ray.labeling.schema import (
    annotations_table,
    annotators_table,
    ensure_labeling_schema,
    leases_table,
    queue_items_table,
)
from al_ray.labeling.tokens import hash_token, is_well_formed, new_token
from al_ray.labels import Answer, LabelStore, Task
from al_ray.seeding import derive_seed

if TYPE_CHECKING:
    from al_ray.config import RunConfig
    from al_ray.monitoring.audit import AuditLog

__all__ = ["ROLES", "Annotator", "LabelQueue", "LeasedTask", "Progress", "QueueCounts", "SubmitResult"]

logger = logging.getLogger(__name__)

_items = queue_items_table
_leases = leases_table
_annotations = annotations_table
_annotators_table = annotators_table


@dataclass(frozen=True)
class Annotator:
    """A person who labels: their id and role (``"annotator"`` or ``"admin"``)."""

    annotator_id: str
    role: str


@dataclass(frozen=True)
class LeasedTask:
    """An item leased to one annotator until ``expires_at`` (unix seconds)."""

    item_id: int
    row_id: int
    round_index: int
    kind: str
    """``"task"``, or ``"gold"`` for a row whose label is known."""
    expires_at: float


@dataclass(frozen=True)
class SubmitResult:
    """Outcome of :meth:`LabelQueue.submit`; ``stored`` is False for a replay of a stored answer."""

    item_id: int
    label: str
    stored: bool


@dataclass(frozen=True)
class Progress:
    """One annotator's counts: answers given, items skipped, task items they could still be given."""

    answered: int
    skipped: int
    remaining: int


@dataclass(frozen=True)
class QueueCounts:
    """The whole queue's counts: open task items that still need answers, and leases held now (gold included)."""

    pending_tasks: int
    leased_tasks: int


class LabelQueue:
    """Tasks, leases and answers of human labeling, in the label store's database.

    Parameters
    ----------
    store
        The run's label store. The queue's tables are created in its database
        if missing, and the queue runs in the store's transactions.
    classes
        Class names an answer may take.
    config
        The ``labeling`` config section.
    seed
        Seed of the gold-row choices and of random tie-breaks. The loop and the
        labeling service must pass the same one; :meth:`for_run` derives it
        from the run config.
    clock
        Returns the current time in unix seconds. Tests pass a fake one to
        expire leases without sleeping.
    audit
        The run's audit log, which gets a ``label`` entry per stored answer;
        None writes no entries.
    """

    def __init__(
        self,
        store: LabelStore,
        classes: Sequence[str],
        config: LabelingConfig,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
    ) -> None:
        names = tuple(classes)
        if not names or any(not isinstance(name, str) or not name for name in names):
            raise InvalidLabelError(
                f"classes must be a non-empty sequence of non-empty strings, got {list(names)[:10]!r}."
            )
        self._store = store
        self._classes = names
        self._config = config
        self._seed = int(seed)
        self._clock = clock
        self._audit = audit
        with store.write_transaction("create the labeling tables") as connection:
            ensure_labeling_schema(connection, store.location)

    @classmethod
    def for_run(
        cls,
        store: LabelStore,
        classes: Sequence[str],
        config: RunConfig,
        *,
        clock: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
    ) -> LabelQueue:
        """Return the queue of a run, seeded from the run's root seed as every process of the run must be."""
        return cls(
            store, classes, config.labeling, seed=derive_seed(config.seed, "labeling"), clock=clock, audit=audit
        )

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names an answer may take."""
        return self._classes

    @property
    def config(self) -> LabelingConfig:
        """The ``labeling`` config section."""
        return self._config

    # Annotators

    def add_annotator(self, annotator_id: str, role: str = "annotator") -> str:
        """Add an annotator and return their token, which is shown this once and stored only hashed.

        Raises
        ------
        InvalidLabelError
            If the id or role is malformed, or the id is reserved for answers
            no person gave (``consensus:...``, ``labelstudio:...``, ``oracle``).
        AnnotatorExistsError
            If the id is taken.
        """
        annotator_id = check_new_annotator_id(annotator_id)
        if role not in ROLES:
            raise InvalidLabelError(f"role must be one of {list(ROLES)}, got {role!r}.")
        token = new_token()
        with self._store.write_transaction("add an annotator") as connection:
            _annotators.insert_annotator(connection, annotator_id, role, token, self._clock())
        logger.info("Added annotator %s with role %s", annotator_id, role)
        return token

    def reset_token(self, annotator_id: str) -> str:
        """Give the annotator a new token and return it; the old token stops working."""
        annotator_id = check_annotator_id(annotator_id)
        token = new_token()
        with self._store.write_transaction("reset a token") as connection:
            _annotators.update_annotator(connection, annotator_id, token_hash=hash_token(token))
        logger.info("Issued a new token for annotator %s", annotator_id)
        return token

    def set_active(self, annotator_id: str, active: bool) -> None:
        """Activate or deactivate an annotator; a deactivated annotator's token is rejected.

        Deactivating also ends the annotator's leases, so the tasks they held
        go to other annotators at once rather than when the leases run out.
        """
        annotator_id = check_annotator_id(annotator_id)
        with self._store.write_transaction("change an annotator") as connection:
            _annotators.update_annotator(connection, annotator_id, active=bool(active))
            if not active:
                _leasing.end_leases(connection, annotator_id)
        logger.info("Annotator %s is now %s", annotator_id, "active" if active else "deactivated")

    def annotators(self) -> list[dict[str, Any]]:
        """Return every annotator as ``{"annotator_id", "role", "active", "created_at"}``, by id."""
        with self._store.read_transaction("read annotators") as connection:
            return _annotators.list_annotators(connection)

    def authenticate(self, token: str | None) -> Annotator:
        """Return the active annotator whose token this is.

        Raises
        ------
        AuthenticationError
            If the token is missing or matches no active annotator.
        """
        if token is None or not is_well_formed(token):
            raise AuthenticationError(
                "Missing or malformed token. Send the token you were given in the header "
                "'Authorization: Bearer <token>'."
            )
        with self._store.read_transaction("authenticate an annotator") as connection:
            annotator_id, role = _annotators.find_by_token(connection, token)
        return Annotator(annotator_id=annotator_id, role=role)

    # Tasks

    def enqueue(self, tasks: Sequence[Task]) -> int:
        """Add a task item for each row that has none yet, and return how many were added.

        Rows that already have a task item are left as they are, so enqueuing
        the same tasks again (after a resume) is a no-op. With ``gold_rate``
        above 0, gold items are added too, from rows already labeled, so that
        there stay enough for an annotator who labels every task.
        """
        batch = list(tasks)
        for task in batch:
            if not isinstance(task, Task):
                raise InvalidLabelError(
                    f"enqueue takes Task objects, got {task!r} of type {type(task).__name__}."
                )
        if not batch:
            return 0
        # Read before the write transaction, because labels() opens its own connection.
        labeled = self._store.labels() if self._config.gold_rate > 0 else {}
        now = self._clock()
        with self._store.write_transaction("enqueue tasks") as connection:
            added = _enqueueing.insert_task_items(
                connection, batch, self._config.answers_per_task, now
            )
            n_gold = _enqueueing.top_up_gold(
                connection,
                labeled,
                self._config.gold_rate,
                self._seed,
                max(task.round_index for task in batch),
                now,
            )
        if added or n_gold:
            logger.info("Enqueued %d new tasks and %d gold items", added, n_gold)
        return added

    def next_task(self, annotator_id: str) -> LeasedTask | None:
        """Return the item the annotator holds, or lease them a new one; None when nothing is left for them.

        Task items come best-first (by round, then rank in the round). With
        ``gold_rate`` above 0, a seeded draw per lease replaces the task with a
        gold item the annotator has not seen. Gold alone is never handed out:
        with no task left for the annotator the result is None.
        """
        with self._store.write_transaction("lease a task") as connection:
            _annotators.require_active(connection, annotator_id)
            now = self._clock()
            _leasing.expire_leases(connection, now)
            held = _leasing.held_lease(connection, annotator_id, now)
            if held is not None:
                item, expires_at = held
                return LeasedTask(item.item_id, item.row_id, item.round_index, item.kind, expires_at)

            item = _leasing.find_task_item(connection, annotator_id, now)
            if item is None:
                return None
            if self._config.gold_rate > 0:
                n_leases = connection.execute(
                    sa.select(sa.func.count())
                    .select_from(_leases)
                    .where(_leases.c.annotator_id == annotator_id)
                ).scalar_one()
                if _gold.draws_gold(self._seed, annotator_id, n_leases, self._config.gold_rate):
                    item = _leasing.find_gold_item(connection, annotator_id) or item
            expires_at = now + self._config.lease_timeout_s
            _leasing.write_lease(connection, item.item_id, annotator_id, now, expires_at)
        logger.debug("Leased item %d to %s until %.0f", item.item_id, annotator_id, expires_at)
        return LeasedTask(item.item_id, item.row_id, item.round_index, item.kind, expires_at)

    def submit(self, annotator_id: str, item_id: int, label: str, submission_id: str) -> SubmitResult:
        """Store the annotator's answer to an item leased to them.

        A request repeated with the same ``submission_id``, or the same answer
        sent again, returns ``stored=False`` and changes nothing in the queue.
        An answer after the lease expired is still stored when no other
        annotator took up the item's open answers meanwhile. With an audit
        log, the answer's ``label`` entry is appended once the answer is
        stored, or by a repeated request if that append failed.

        Raises
        ------
        InvalidLabelError
            If the label is not a class, or ``submission_id`` is malformed.
        UnknownTaskError
            If no item has this id.
        TaskNotYoursError
            If the item was never leased to the annotator.
        LeaseExpiredError
            If the lease expired and other annotators took up the item meanwhile.
        AnswerConflictError
            If the annotator already gave this item a different label, or used
            ``submission_id`` for another answer.
        AuditError
            If the answer is stored but its audit entry could not be appended;
            repeat the request to append it.
        """
        item_id = check_item_id(item_id)
        label = check_label(label, self._classes)
        submission_id = check_submission_id(submission_id)
        with self._store.write_transaction("store an answer") as connection:
            stored = self._insert_answer(connection, annotator_id, item_id, label, submission_id)
            # A replay is logged too: its key is in the log already, unless the
            # append after the first submission failed, and then this fills the gap.
            logged = _audit.stored_answer(connection, item_id, annotator_id) if self._audit is not None else None
        if stored:
            logger.debug("Stored the answer of %s to item %d", annotator_id, item_id)
        if logged is not None:
            _audit.append_answers(self._audit, [logged])
        return SubmitResult(item_id, label, stored=stored)

    def _insert_answer(
        self, connection: sa.Connection, annotator_id: str, item_id: int, label: str, submission_id: str
    ) -> bool:
        """Insert the answer in the caller's transaction; return False for a replay of a stored one."""
        _annotators.require_active(connection, annotator_id)
        now = self._clock()

        replay = connection.execute(
            sa.select(_annotations.c.item_id, _annotations.c.label).where(
                _annotations.c.annotator_id == annotator_id,
                _annotations.c.submission_id == submission_id,
            )
        ).one_or_none()
        if replay is not None:
            if replay.item_id == item_id and replay.label == label:
                return False
            raise AnswerConflictError(
                f"submission_id {submission_id!r} was already used for item {replay.item_id} "
                f"with label {replay.label!r}. Send a new submission_id with each new answer."
            )

        item = connection.execute(
            sa.select(_items.c.kind, _items.c.status, _items.c.row_id, _items.c.required_answers)
            .where(_items.c.item_id == item_id)
        ).one_or_none()
        if item is None:
            raise unknown_item(item_id)
        earlier = connection.execute(
            sa.select(_annotations.c.label).where(
                _annotations.c.item_id == item_id, _annotations.c.annotator_id == annotator_id
            )
        ).scalar_one_or_none()
        if earlier is not None:
            if earlier == label:
                return False
            raise AnswerConflictError(
                f"You already answered item {item_id} with label {earlier!r}. An answer cannot "
                f"be changed, so {label!r} was not stored."
            )

        self._check_lease(connection, annotator_id, item_id, item, now)
        connection.execute(
            sa.insert(_annotations).values(
                item_id=item_id,
                row_id=item.row_id,
                annotator_id=annotator_id,
                label=label,
                submission_id=submission_id,
                answered_at=now,
            )
        )
        connection.execute(
            sa.update(_leases)
            .where(_leases.c.item_id == item_id, _leases.c.annotator_id == annotator_id)
            .values(state=ANSWERED)
        )
        return True

    def _check_lease(
        self, connection: sa.Connection, annotator_id: str, item_id: int, item: sa.Row, now: float
    ) -> None:
        """Raise unless the annotator holds the item, or their lease ended but the item still needs them."""
        lease = connection.execute(
            sa.select(_leases.c.state, _leases.c.expires_at).where(
                _leases.c.item_id == item_id, _leases.c.annotator_id == annotator_id
            )
        ).one_or_none()
        if lease is None:
            raise TaskNotYoursError(
                f"Item {item_id} is not leased to you. Answer the task that GET /api/next gave you "
                "(the one the labeling page shows)."
            )
        if lease.state == ACTIVE and lease.expires_at > now:
            return
        if item.kind == GOLD:
            return
        if item.status == OPEN:
            answers, holders = connection.execute(
                sa.select(
                    _leasing.answer_count(sa.literal(item_id)),
                    _leasing.holder_count(sa.literal(item_id), now),
                )
            ).one()
            if answers + holders < item.required_answers:
                return
        raise LeaseExpiredError(
            f"Your lease on item {item_id} ended and other annotators answered or hold it "
            "meanwhile, so your answer was not stored. Request the next task."
        )

    def skip(self, annotator_id: str, item_id: int) -> None:
        """Give back a leased item without answering; the annotator is not given it again.

        Raises
        ------
        UnknownTaskError
            If no item has this id.
        TaskNotYoursError
            If the item was never leased to the annotator.
        AnswerConflictError
            If the annotator already answered the item.
        """
        item_id = check_item_id(item_id)
        with self._store.write_transaction("skip a task") as connection:
            _annotators.require_active(connection, annotator_id)
            exists = connection.execute(
                sa.select(_items.c.item_id).where(_items.c.item_id == item_id)
            ).first()
            if exists is None:
                raise unknown_item(item_id)
            state = connection.execute(
                sa.select(_leases.c.state).where(
                    _leases.c.item_id == item_id, _leases.c.annotator_id == annotator_id
                )
            ).scalar_one_or_none()
            if state is None:
                raise TaskNotYoursError(f"Item {item_id} is not leased to you, so it cannot be skipped.")
            if state == ANSWERED:
                raise AnswerConflictError(f"You already answered item {item_id}, so it cannot be skipped.")
            if state == SKIPPED:
                return
            connection.execute(
                sa.update(_leases)
                .where(_leases.c.item_id == item_id, _leases.c.annotator_id == annotator_id)
                .values(state=SKIPPED)
            )
        logger.debug("%s skipped item %d", annotator_id, item_id)

    def release(self, annotator_id: str, item_id: int) -> bool:
        """End the annotator's lease on an item without answering or skipping it; return whether one ended.

        The item returns to the queue at once. Unlike a skip, the annotator may
        be given it again, after the items they never saw. The labeling page
        releases its task when it is closed or switches to the quality view, so
        an idle page does not hold a task that a round waits for. Releasing an
        item already answered, skipped or expired changes nothing.

        Raises
        ------
        UnknownTaskError
            If no item has this id.
        TaskNotYoursError
            If the item was never leased to the annotator.
        """
        item_id = check_item_id(item_id)
        with self._store.write_transaction("release a task") as connection:
            _annotators.require_active(connection, annotator_id)
            exists = connection.execute(
                sa.select(_items.c.item_id).where(_items.c.item_id == item_id)
            ).first()
            if exists is None:
                raise unknown_item(item_id)
            leased = connection.execute(
                sa.select(_leases.c.state).where(
                    _leases.c.item_id == item_id, _leases.c.annotator_id == annotator_id
                )
            ).first()
            if leased is None:
                raise TaskNotYoursError(f"Item {item_id} is not leased to you, so it cannot be released.")
            released = _leasing.end_leases(connection, annotator_id, item_id) > 0
        if released:
            logger.debug("%s released item %d", annotator_id, item_id)
        return released

    # Reads

    def progress(self, annotator_id: str) -> Progress:
        """Return the annotator's answered and skipped counts and the task items left for them."""
        now = self._clock()
        with self._store.read_transaction("read progress") as connection:
            _annotators.require_active(connection, annotator_id)
            answered = connection.execute(
                sa.select(sa.func.count())
                .select_from(_annotations)
                .where(_annotations.c.annotator_id == annotator_id)
            ).scalar_one()
            skipped = connection.execute(
                sa.select(sa.func.count())
                .select_from(_leases)
                .where(_leases.c.annotator_id == annotator_id, _leases.c.state == SKIPPED)
            ).scalar_one()
            available = _leasing.available_tasks(annotator_id, now).subquery()
            remaining = connection.execute(sa.select(sa.func.count()).select_from(available)).scalar_one()
            held = _leasing.held_lease(connection, annotator_id, now)
        if held is not None and held[0].kind == TASK:
            remaining += 1
        return Progress(answered=answered, skipped=skipped, remaining=remaining)

    def my_answers(self, annotator_id: str) -> list[dict[str, Any]]:
        """Return the annotator's own answers, oldest first.

        Each is ``{"item_id", "row_id", "label", "submission_id", "answered_at"}``.
        Whether an item was gold is not shown.
        """
        with self._store.read_transaction("read answers") as connection:
            _annotators.require_active(connection, annotator_id)
            rows = connection.execute(
                sa.select(
                    _annotations.c.item_id,
                    _annotations.c.row_id,
                    _annotations.c.label,
                    _annotations.c.submission_id,
                    _annotations.c.answered_at,
                )
                .where(_annotations.c.annotator_id == annotator_id)
                .order_by(_annotations.c.answered_at, _annotations.c.annotation_id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def pending_items(self) -> list[dict[str, Any]]:
        """Return the open task items, best-first, for export to another labeling tool.

        Each is ``{"item_id", "row_id", "round_index", "position", "required_answers", "answers"}``.
        """
        statement = (
            sa.select(
                _items.c.item_id,
                _items.c.row_id,
                _items.c.round_index,
                _items.c.position,
                _items.c.required_answers,
                _leasing.answer_count(_items.c.item_id).label("answers"),
            )
            .where(_items.c.kind == TASK, _items.c.status == OPEN)
            .order_by(_items.c.round_index, _items.c.position, _items.c.item_id)
        )
        with self._store.read_transaction("read pending tasks") as connection:
            rows = connection.execute(statement).all()
        return [dict(row._mapping) for row in rows]

    def counts(self) -> QueueCounts:
        """Return how many open task items still need answers and how many leases annotators hold now.

        An item with all its answers counts as done here, though it stays
        open until :meth:`resolve` aggregates them.
        """
        now = self._clock()
        with self._store.read_transaction("count the queue") as connection:
            pending = connection.execute(
                sa.select(sa.func.count())
                .select_from(_items)
                .where(
                    _items.c.kind == TASK,
                    _items.c.status == OPEN,
                    _leasing.answer_count(_items.c.item_id) < _items.c.required_answers,
                )
            ).scalar_one()
            # A lease past expires_at counts as ended even before next_task marks it expired.
            leased = connection.execute(
                sa.select(sa.func.count())
                .select_from(_leases)
                .where(_leases.c.state == ACTIVE, _leases.c.expires_at > now)
            ).scalar_one()
        return QueueCounts(pending_tasks=int(pending), leased_tasks=int(leased))

    def quality(self) -> dict[str, Any]:
        """Return agreement, gold accuracy and counts for the admin view, as JSON-ready values.

        The keys are described in :func:`al_ray.labeling._quality.summarize`.
        """
        with self._store.read_transaction("read answers for quality") as connection:
            answer_rows = connection.execute(
                sa.select(
                    _annotations.c.row_id,
                    _annotations.c.annotator_id,
                    _annotations.c.label,
                    _annotations.c.answered_at,
                    _items.c.kind,
                    _items.c.gold_label,
                ).join(_items, _items.c.item_id == _annotations.c.item_id)
            ).all()
            skipped = {
                annotator_id: count
                for annotator_id, count in connection.execute(
                    sa.select(_leases.c.annotator_id, sa.func.count())
                    .where(_leases.c.state == SKIPPED)
                    .group_by(_leases.c.annotator_id)
                )
            }
            annotator_rows = connection.execute(
                sa.select(
                    _annotators_table.c.annotator_id,
                    _annotators_table.c.role,
                    _annotators_table.c.active,
                )
            ).all()
            item_counts = connection.execute(
                sa.select(_items.c.kind, _items.c.status, sa.func.count()).group_by(
                    _items.c.kind, _items.c.status
                )
            ).all()
        return _quality.summarize(self._classes, answer_rows, skipped, annotator_rows, item_counts)

    # Aggregation

    def resolve(self) -> list[Answer]:
        """Aggregate the task items that have all their answers, and return one answer per such row.

        Each row is returned by the call that resolves it and not again. Its
        answer is kept on the item, so :meth:`resolved_answers` returns it
        later. The annotator of the answer is ``"consensus:<method>"``. With
        the ``defer`` tie rule a tied item asks one more annotator, up to
        ``max_answers`` answers, and is then settled by a seeded random draw.
        """
        with self._store.write_transaction("resolve answers") as connection:
            resolved = _resolving.resolve_items(
                connection, self._classes, self._config, self._seed, self._clock()
            )
        if resolved:
            logger.info("Resolved %d tasks", len(resolved))
        return resolved

    def resolved_answers(self, row_ids: Iterable[int]) -> list[Answer]:
        """Return the consensus answers of those rows that are resolved, by row_id.

        A source that lost the answers :meth:`resolve` returned (a run killed
        before storing them) gets them again here.
        """
        ids = sorted({operator.index(row_id) for row_id in row_ids})
        with self._store.read_transaction("read resolved answers") as connection:
            return _resolving.stored_consensus(connection, ids)

    def import_votes(self, votes: Iterable[Vote]) -> int:
        """Store answers made in another tool (a Label Studio export) and return how many were new.

        Each vote becomes an answer to its row's task item. A vote stored
        before with the same label is skipped. Nothing is stored when any vote
        is invalid. With an audit log, each vote's answer gets its ``label``
        entry unless the log has it, so importing the file again after a
        failed append fills the gap.

        Raises
        ------
        InvalidLabelError
            If a vote is not a :class:`Vote`, or its label is not a class.
        UnknownTaskError
            If a vote names a row that has no task item.
        AnswerConflictError
            If an annotator has a different answer for the row, stored or in ``votes``.
        AuditError
            If the answers are stored but their audit entries could not be appended.
        """
        batch = _importing.check_votes(list(votes), self._classes)
        if not batch:
            return 0
        with self._store.write_transaction("import answers") as connection:
            stored = _importing.insert_votes(connection, batch, self._clock())
            logged = (
                _audit.imported_answers(connection, {(vote.row_id, vote.annotator) for vote in batch})
                if self._audit is not None
                else []
            )
        logger.info("Imported %d answers (%d were already stored)", stored, len(batch) - stored)
        if logged:
            _audit.append_answers(self._audit, logged)
        return stored
