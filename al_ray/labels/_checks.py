"""Validation of label-store arguments and the row-id lists quoted in its error messages."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence

from al_ray.errors import LabelStoreError

__all__ = [
    "MAX_IDS_IN_MESSAGE",
    "already_queried_message",
    "check_meta_key",
    "check_round_index",
    "check_row_ids",
    "check_utilities",
    "format_row_ids",
]

# Row ids quoted in one error message before the rest are only counted.
MAX_IDS_IN_MESSAGE = 10


def check_round_index(round_index: object) -> int:
    """Return ``round_index`` as an int, raising unless it is an integer >= 0."""
    if isinstance(round_index, bool):
        raise LabelStoreError(f"round_index must be an integer >= 0, got {round_index!r}.")
    try:
        value = operator.index(round_index)  # type: ignore[arg-type]
    except TypeError:
        raise LabelStoreError(
            f"round_index must be an integer >= 0, got {round_index!r}."
        ) from None
    if value < 0:
        raise LabelStoreError(f"round_index must be an integer >= 0, got {value}.")
    return value


def check_row_ids(row_ids: Iterable[object]) -> list[int]:
    """Return ``row_ids`` as a list of ints, raising on a non-integer or a repeated id."""
    if isinstance(row_ids, (str, bytes)):
        raise LabelStoreError(
            f"row_ids must be a sequence of integers, got the string {row_ids!r}."
        )
    ids: list[int] = []
    for value in row_ids:
        if isinstance(value, bool):
            raise LabelStoreError(f"row_ids must contain integers, got the bool {value!r}.")
        try:
            ids.append(operator.index(value))  # type: ignore[arg-type]
        except TypeError:
            raise LabelStoreError(
                f"row_ids must contain integers, got {value!r} of type {type(value).__name__}."
            ) from None

    seen: set[int] = set()
    # Insertion-ordered set, so the message quotes repeats in input order.
    repeated: dict[int, None] = {}
    for row_id in ids:
        if row_id in seen:
            repeated[row_id] = None
        seen.add(row_id)
    if repeated:
        raise LabelStoreError(
            f"row_ids must be distinct, but {format_row_ids(list(repeated))} appear more "
            "than once. "
            "Remove the repeats from the selection."
        )
    return ids


def check_utilities(utilities: Sequence[float] | None, n_rows: int) -> list[float | None]:
    """Return one float per row, with NaN and missing utilities as ``None``."""
    if utilities is None:
        return [None] * n_rows
    values = list(utilities)
    if len(values) != n_rows:
        raise LabelStoreError(
            f"utilities must have one value per row id: got {len(values)} utilities "
            f"for {n_rows} row ids."
        )
    checked: list[float | None] = []
    for value in values:
        if value is None:
            checked.append(None)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise LabelStoreError(f"utilities must be numbers, got {value!r}.") from None
        checked.append(None if math.isnan(number) else number)
    return checked


def check_meta_key(key: object) -> str:
    """Return ``key``, raising unless it is a non-empty string."""
    if not isinstance(key, str) or not key:
        raise LabelStoreError(f"Metadata keys must be non-empty strings, got {key!r}.")
    return key


def format_row_ids(row_ids: Sequence[int]) -> str:
    """Return ``"row_id 4"`` or ``"row_ids 4, 9"``, quoting at most ten ids."""
    quoted = ", ".join(str(row_id) for row_id in row_ids[:MAX_IDS_IN_MESSAGE])
    more = len(row_ids) - MAX_IDS_IN_MESSAGE
    suffix = f" and {more} more" if more > 0 else ""
    noun = "row_id" if len(row_ids) == 1 else "row_ids"
    return f"{noun} {quoted}{suffix}"


def already_queried_message(round_index: int, elsewhere: Sequence[tuple[int, int]]) -> str:
    """Return the error message for rows that already have a task from another round.

    ``elsewhere`` contains ``(row_id, round_index)`` pairs of the earlier tasks.
    """
    quoted = ", ".join(
        f"row_id {row_id} in round {other_round}"
        for row_id, other_round in elsewhere[:MAX_IDS_IN_MESSAGE]
    )
    more = len(elsewhere) - MAX_IDS_IN_MESSAGE
    suffix = f" and {more} more" if more > 0 else ""
    return (
        f"Cannot post tasks in round {round_index} because these rows already have a task "
        f"from another round: {quoted}{suffix}. A row is queried at most once per run, so "
        "leave queried rows out of the pool (LabelStore.queried_row_ids() lists them)."
    )
