"""Validation of the ids and labels that callers of the labeling queue send."""

from __future__ import annotations

import operator
import re

from al_ray.labeling.errors import (
    AuthenticationError,
    InvalidLabelError,
    UnknownTaskError,
)

__all__ = [
    "ANNOTATOR_ID_RULE",
    "MAX_SUBMISSION_ID_CHARS",
    "RESERVED_ANNOTATOR_IDS",
    "RESERVED_ANNOTATOR_PREFIXES",
    "check_annotator_id",
    "check_item_id",
    "check_label",
    "check_new_annotator_id",
    "check_submission_id",
    "unknown_annotator",
    "unknown_item",
]

# Annotator ids appear in URLs, logs and MLflow metric names, so they keep to
# characters all three accept.
_ANNOTATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$")

ANNOTATOR_ID_RULE = "1 to 64 letters, digits and '_.@:-', starting with a letter or digit"
"""The rule of :func:`check_annotator_id`, as error messages and help texts state it."""

RESERVED_ANNOTATOR_PREFIXES: tuple[str, ...] = ("consensus:", "labelstudio:")
"""Prefixes of annotator ids that the store writes for answers no person gave on the page.

``consensus:<method>`` names the aggregated answer of a task, and
``labelstudio:<user>`` an answer imported from Label Studio.
"""

RESERVED_ANNOTATOR_IDS: tuple[str, ...] = ("oracle",)
"""Whole annotator ids that name something other than a person: the simulated oracle's answers."""

MAX_SUBMISSION_ID_CHARS = 128

# Classes quoted in an error message before the rest are elided.
_CLASSES_IN_MESSAGE = 20


def check_annotator_id(annotator_id: object) -> str:
    """Return ``annotator_id``, raising :class:`InvalidLabelError` unless it is a well-formed id."""
    if not isinstance(annotator_id, str) or not _ANNOTATOR_ID.match(annotator_id):
        raise InvalidLabelError(f"Annotator id {annotator_id!r} is invalid: use {ANNOTATOR_ID_RULE}.")
    return annotator_id


def check_new_annotator_id(annotator_id: object) -> str:
    """Return ``annotator_id`` for a new person, raising unless it is well formed and not reserved.

    An id the store uses for answers that no person gave on the page would
    mix that person's answers with the others in the store and the quality view.
    """
    annotator_id = check_annotator_id(annotator_id)
    folded = annotator_id.lower()
    if folded.startswith(RESERVED_ANNOTATOR_PREFIXES) or folded in RESERVED_ANNOTATOR_IDS:
        reserved = [f"'{start}...'" for start in RESERVED_ANNOTATOR_PREFIXES]
        reserved += [repr(whole) for whole in RESERVED_ANNOTATOR_IDS]
        raise InvalidLabelError(
            f"Annotator id {annotator_id!r} is reserved: the store names answers that no person gave "
            f"on the page with {', '.join(reserved)}. Choose another id, such as the person's name."
        )
    return annotator_id


def check_item_id(item_id: object) -> int:
    """Return ``item_id`` as an int, raising :class:`InvalidLabelError` unless it is an integer."""
    if isinstance(item_id, bool):
        raise InvalidLabelError(f"item_id must be an integer, got {item_id!r}.")
    try:
        return operator.index(item_id)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidLabelError(f"item_id must be an integer, got {item_id!r}.") from None


def check_submission_id(submission_id: object) -> str:
    """Return ``submission_id``, raising unless it is 1 to 128 printable characters."""
    if (
        not isinstance(submission_id, str)
        or not 0 < len(submission_id) <= MAX_SUBMISSION_ID_CHARS
        or not submission_id.isprintable()
    ):
        raise InvalidLabelError(
            f"submission_id must be 1 to {MAX_SUBMISSION_ID_CHARS} printable characters, got "
            f"{submission_id!r}. Send a new random id (a UUID) with each answer."
        )
    return submission_id


def check_label(label: object, classes: tuple[str, ...]) -> str:
    """Return ``label``, raising :class:`InvalidLabelError` unless it is one of ``classes``."""
    if not isinstance(label, str) or label not in classes:
        shown = list(classes[:_CLASSES_IN_MESSAGE])
        more = " and more" if len(classes) > _CLASSES_IN_MESSAGE else ""
        raise InvalidLabelError(f"Label {label!r} is not a class; classes are {shown}{more}.")
    return label


def unknown_annotator(annotator_id: str) -> AuthenticationError:
    """Return the error for an annotator id that no annotator has."""
    return AuthenticationError(
        f"Annotator {annotator_id!r} does not exist. Add it with "
        f"`al-ray label annotators add {annotator_id} CONFIG` first, or list the annotators "
        "with `al-ray label annotators list CONFIG`."
    )


def unknown_item(item_id: int) -> UnknownTaskError:
    """Return the error for an item id that no queue item has."""
    return UnknownTaskError(
        f"No task has item_id {item_id}. Request a task with GET /api/next (the labeling page does this)."
    )
