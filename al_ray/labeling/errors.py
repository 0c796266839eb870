"""Errors of the labeling queue, each with the HTTP status and machine code the service replies with.

The labeling service turns a :class:`LabelingError` into a JSON body
``{"error": code, "message": message}`` with status ``status_code``::

    LabelingError (400, bad_request)
    ├── AuthenticationError (401, unauthenticated)   missing, unknown or deactivated token
    ├── ForbiddenError (403, forbidden)               an admin action by a plain annotator
    ├── TaskNotYoursError (403, task_not_yours)       a task leased to someone else, or never leased
    ├── UnknownTaskError (404, unknown_task)          no such item
    ├── AnnotatorExistsError (409, annotator_exists)  an annotator id already taken
    ├── LeaseExpiredError (409, lease_expired)        the lease ran out and the task went to others
    ├── AnswerConflictError (409, answer_conflict)    a second, different answer to the same task
    └── InvalidLabelError (422, invalid_label)        a label outside the class set, a bad field
"""

from __future__ import annotations

from typing import ClassVar

from al_ray.errors import AlRayError

__all__ = [
    "AnnotatorExistsError",
    "AnswerConflictError",
    "AuthenticationError",
    "ForbiddenError",
    "InvalidLabelError",
    "LabelingError",
    "LeaseExpiredError",
    "TaskNotYoursError",
    "UnknownTaskError",
]


class LabelingError(AlRayError):
    """A labeling request that cannot be carried out."""

    status_code: ClassVar[int] = 400
    """HTTP status the labeling service replies with."""

    code: ClassVar[str] = "bad_request"
    """Short machine-readable name of the error, the ``error`` field of the JSON reply."""

    def to_json(self) -> dict[str, str]:
        """Return the JSON body of the service's error reply."""
        return {"error": self.code, "message": str(self)}


class AuthenticationError(LabelingError):
    """The request carries no token, or one that matches no active annotator."""

    status_code = 401
    code = "unauthenticated"


class ForbiddenError(LabelingError):
    """The annotator's role does not allow the action."""

    status_code = 403
    code = "forbidden"


class TaskNotYoursError(LabelingError):
    """The task is not leased to the annotator who names it."""

    status_code = 403
    code = "task_not_yours"


class UnknownTaskError(LabelingError):
    """No queue item has the given id, or no task exists for the given row."""

    status_code = 404
    code = "unknown_task"


class AnnotatorExistsError(LabelingError):
    """An annotator with the given id already exists."""

    status_code = 409
    code = "annotator_exists"


class LeaseExpiredError(LabelingError):
    """The annotator's lease expired and the task's answers were taken up by others meanwhile."""

    status_code = 409
    code = "lease_expired"


class AnswerConflictError(LabelingError):
    """A second, different answer to a task, or a submission id reused for another answer."""

    status_code = 409
    code = "answer_conflict"


class InvalidLabelError(LabelingError):
    """A label outside the class set, or a malformed field of a submission."""

    status_code = 422
    code = "invalid_label"
