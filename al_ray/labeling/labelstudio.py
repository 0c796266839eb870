"""Label Studio interchange: export pending tasks, import finished annotations as votes.

:func:`export_tasks` writes a Label Studio import file, a JSON list of tasks
whose ``data`` contains the ``row_id`` and what the annotator is shown (an image as a
PNG data URI, a text, or a table of feature values), and beside it a labeling
config with one ``Choices`` tag over the run's classes. Paste the config into
the project's Labeling Interface settings, then import the JSON file.

:func:`import_annotations` reads the project's export in Label Studio's JSON
format (not JSON_MIN or CSV) and returns one :class:`Vote` per annotator and
row, with annotator ids ``"labelstudio:<user id>"``.

The formats follow the Label Studio documentation of the task format
(``docs/source/includes/task_format.md``) and its JSON export serializer
(``label_studio/data_export/serializers.py``): an annotation's
``completed_by`` is a user id, or an object with ``id`` and ``email``, and a
``Choices`` answer is a result ``{"type": "choices", "from_name": ...,
"value": {"choices": [...]}}``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from al_ray.errors import DataError
from al_ray.labeling.aggregation import Vote
from al_ray.labeling.png import image_data_uri

__all__ = [
    "ANNOTATOR_PREFIX",
    "CHOICES_NAME",
    "DISPLAYS",
    "LabelStudioImport",
    "export_tasks",
    "import_annotations",
    "labeling_config",
    "labeling_config_path",
    "read_annotations",
]

logger = logging.getLogger(__name__)

CHOICES_NAME = "label"
"""``name`` of the Choices tag in the exported labeling config, the ``from_name``
of every result Label Studio exports for it."""

DISPLAYS: tuple[str, ...] = ("auto", "image", "text", "table")

ANNOTATOR_PREFIX = "labelstudio:"
"""Prefix of the annotator id of every imported vote, before the Label Studio user id."""

# Keys of a queue item copied into a task's data next to row_id, so the export
# shows which queue item and round a task came from.
_ITEM_KEYS = ("item_id", "round_index")


def labeling_config_path(tasks_path: str | os.PathLike[str]) -> Path:
    """Return where :func:`export_tasks` writes the labeling config for ``tasks_path``."""
    path = Path(tasks_path)
    return path.with_name(f"{path.stem}.labeling_config.xml")


def labeling_config(classes: Sequence[str], display: str) -> str:
    """Return a Label Studio labeling config: the row shown by ``display``, one choice per class."""
    if display not in ("image", "text", "table"):
        raise DataError(f"display must be image, text or table, got {display!r}.")
    tag = {"image": "Image", "text": "Text", "table": "Table"}[display]
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in classes)
    return (
        "<View>\n"
        f'  <{tag} name="{display}" value="${display}"/>\n'
        f'  <Choices name="{CHOICES_NAME}" toName="{display}" choice="single" '
        'showInline="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _item_row_id(item: Mapping[str, Any], position: int) -> int:
    if not isinstance(item, Mapping) or "row_id" not in item:
        raise DataError(
            f"item {position} to export must be a mapping with a row_id, got {item!r}."
        )
    row_id = item["row_id"]
    if isinstance(row_id, bool) or not isinstance(row_id, (int, np.integer)):
        raise DataError(f"item {position} has row_id {row_id!r}; row_id must be an integer.")
    return int(row_id)


def _resolve_display(display: str, image_shape: Sequence[int] | None, values: Sequence[Any]) -> str:
    if display not in DISPLAYS:
        raise DataError(f"display must be one of {list(DISPLAYS)}, got {display!r}.")
    if display != "auto":
        return display
    if image_shape is not None:
        return "image"
    if values and all(isinstance(value, str) for value in values):
        return "text"
    return "table"


def _table_cell(value: float) -> float | None:
    # Features are float32, whose 7 significant digits are all that is meaningful to show.
    return float(f"{value:.7g}") if math.isfinite(value) else None


def _display_value(
    value: Any,
    row_id: int,
    display: str,
    image_shape: Sequence[int] | None,
    feature_names: Sequence[str] | None,
) -> Any:
    if display == "text":
        if not isinstance(value, str):
            raise DataError(
                f"row_id {row_id} is shown as text, but features_of returned "
                f"{type(value).__name__}; return the row's text as a str."
            )
        return value
    if display == "image":
        if image_shape is None:
            raise DataError("display image needs image_shape (height, width); pass image_shape.")
        return image_data_uri(value, image_shape)
    try:
        row = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(
            f"row_id {row_id} is shown as a table, but features_of returned "
            f"{type(value).__name__} {str(value)[:40]!r}; return a numeric feature vector."
        ) from None
    names = list(feature_names) if feature_names is not None else [
        f"feature_{index}" for index in range(row.size)
    ]
    if len(names) != row.size:
        raise DataError(
            f"row_id {row_id} has {row.size} features but {len(names)} feature names; "
            "pass one name per feature."
        )
    return {name: _table_cell(float(cell)) for name, cell in zip(names, row)}


def export_tasks(
    items: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    classes: Sequence[str],
    display: str,
    features_of: Callable[[list[int]], Sequence[Any]],
    image_shape: Sequence[int] | None = None,
    feature_names: Sequence[str] | None = None,
) -> int:
    """Write queue items as a Label Studio import file and its labeling config.

    Args:
        items: Queue items, each a mapping with an integer ``row_id`` (and
            optionally ``item_id`` and ``round_index``, copied into the task).
        path: The JSON file to write; the labeling config goes to
            :func:`labeling_config_path` of it. Both are replaced atomically.
        classes: Class names, one choice each.
        display: ``"image"`` (a PNG data URI of the row reshaped to
            ``image_shape``), ``"text"``, ``"table"`` (feature name to value),
            or ``"auto"``: image when ``image_shape`` is given, else text when
            every value is a str, else table.
        features_of: Returns, for a list of row_ids, what to show for each in
            the same order: a feature vector, or the text for ``"text"``.
        image_shape: ``(height, width)`` of a greyscale image row.
        feature_names: Column names for ``"table"``; defaults to ``feature_<i>``.

    Returns:
        Number of tasks written.

    Raises:
        DataError: If an item has no integer row_id, a row_id repeats, or a row
            cannot be shown as ``display``. Nothing is written then.
    """
    class_names = [str(name) for name in classes]
    if not class_names:
        raise DataError("classes must name at least one class to export a labeling config.")
    row_ids = [_item_row_id(item, position) for position, item in enumerate(items)]
    repeated = sorted(row_id for row_id, count in Counter(row_ids).items() if count > 1)
    if repeated:
        raise DataError(
            f"row_ids {repeated[:5]} appear in more than one item; export each row once."
        )

    values = list(features_of(list(row_ids))) if row_ids else []
    if len(values) != len(row_ids):
        raise DataError(
            f"features_of returned {len(values)} values for {len(row_ids)} row_ids; "
            "return one value per row_id, in order."
        )
    resolved = _resolve_display(display, image_shape, values)

    tasks = []
    for item, row_id, value in zip(items, row_ids, values):
        data: dict[str, Any] = {"row_id": row_id}
        for key in _ITEM_KEYS:
            if key in item and item[key] is not None:
                data[key] = int(item[key])
        data[resolved] = _display_value(value, row_id, resolved, image_shape, feature_names)
        tasks.append({"data": data})

    text = json.dumps(tasks, ensure_ascii=False, allow_nan=False, indent=1)
    target = Path(path)
    config_path = labeling_config_path(target)
    _write_atomic(config_path, labeling_config(class_names, resolved))
    _write_atomic(target, text + "\n")
    logger.info(
        "Exported %d Label Studio tasks (display %s) to %s with labeling config %s.",
        len(tasks),
        resolved,
        target,
        config_path,
    )
    return len(tasks)


@dataclass(frozen=True)
class LabelStudioImport:
    """Votes read from a Label Studio export, with the annotations left out."""

    votes: list[Vote]
    """One vote per annotator and row, sorted by ``(row_id, annotator)``."""

    tasks: int
    """Tasks in the export."""

    cancelled: int = 0
    """Annotations skipped because the annotator cancelled (skipped) the task."""

    empty: int = 0
    """Annotations skipped because they contain no result of the Choices tag."""

    superseded: list[tuple[int, str]] = field(default_factory=list)
    """``(row_id, annotator)`` pairs with several annotations, of which only the
    latest (by ``updated_at``) was kept."""


def _where(task_index: int, task: Mapping[str, Any], annotation_index: int | None = None) -> str:
    where = f"task {task_index}"
    if isinstance(task.get("id"), (int, str)):
        where += f" (Label Studio id {task['id']})"
    if annotation_index is not None:
        where = f"annotation {annotation_index} of {where}"
    return where


def _task_row_id(task: Mapping[str, Any], task_index: int, path: Path) -> int:
    data = task.get("data")
    row_id = data.get("row_id") if isinstance(data, Mapping) else None
    if row_id is None:
        raise DataError(
            f"{_where(task_index, task)} in {path} has no data.row_id. Import only tasks "
            "that al-ray exported, or add the pool row_id to each task's data."
        )
    # A task imported into Label Studio from CSV carries row_id as a string.
    if isinstance(row_id, str) and re.fullmatch(r"-?[0-9]+", row_id.strip()):
        return int(row_id.strip())
    if isinstance(row_id, bool) or not isinstance(row_id, int):
        raise DataError(
            f"{_where(task_index, task)} in {path} has data.row_id {row_id!r}; "
            "row_id must be an integer."
        )
    return row_id


def _annotator_id(completed_by: Any, where: str, path: Path) -> str:
    # The user id is preferred over the email, so an export with plain ids and
    # one with user objects name the same person the same way.
    if isinstance(completed_by, Mapping):
        if completed_by.get("id") is not None:
            return f"{ANNOTATOR_PREFIX}{completed_by['id']}"
        if completed_by.get("email"):
            return f"{ANNOTATOR_PREFIX}{completed_by['email']}"
    elif isinstance(completed_by, (int, str)) and not isinstance(completed_by, bool) and completed_by != "":
        return f"{ANNOTATOR_PREFIX}{completed_by}"
    raise DataError(
        f"{where} in {path} has completed_by {completed_by!r}; expected a user id or an "
        "object with id or email. Export from Label Studio again with the JSON format."
    )


def _timestamp(annotation: Mapping[str, Any], where: str, path: Path) -> float:
    text = annotation.get("updated_at") or annotation.get("created_at")
    if text is None:
        return 0.0
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise DataError(
            f"{where} in {path} has the timestamp {text!r}, which is not ISO 8601."
        ) from None
    if moment.tzinfo is None:
        # Label Studio writes UTC; a timestamp without an offset is read as UTC too.
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _choice(
    annotation: Mapping[str, Any],
    where: str,
    path: Path,
    classes: frozenset[str],
    from_name: str | None,
) -> str | None:
    """Return the single class chosen in ``annotation``, or None when it contains no choice."""
    results = annotation.get("result")
    if not isinstance(results, list):
        raise DataError(f"{where} in {path} has no result list; got {results!r}.")

    choice_results = [
        result
        for result in results
        if isinstance(result, Mapping)
        and result.get("type") == "choices"
        and (from_name is None or result.get("from_name") == from_name)
    ]
    if not choice_results:
        return None
    if len(choice_results) > 1:
        names = sorted({str(result.get("from_name")) for result in choice_results})
        raise DataError(
            f"{where} in {path} has {len(choice_results)} Choices results (from_name {names}); "
            "pass from_name to pick the one that contains the class."
        )

    value = choice_results[0].get("value")
    chosen = value.get("choices") if isinstance(value, Mapping) else None
    if not isinstance(chosen, list) or not chosen:
        raise DataError(f"{where} in {path} has a Choices result without choices: {value!r}.")
    if len(chosen) > 1:
        raise DataError(
            f"{where} in {path} chose {len(chosen)} classes {chosen!r}; each row takes one. "
            'Set choice="single" on the Choices tag and fix the annotation in Label Studio.'
        )

    label = chosen[0]
    if not isinstance(label, str) or label not in classes:
        raise DataError(
            f"{where} in {path} chose {label!r}, which is not a class; classes are "
            f"{sorted(classes)!r}. Use the labeling config that al-ray exported."
        )
    return label


def _load_tasks(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"Label Studio export {path} does not exist.") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}); pass a JSON export.") from None
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column "
            f"{error.colno}. Export the project from Label Studio with the JSON format."
        ) from None
    if not isinstance(tasks, list):
        raise DataError(
            f"{path} contains a JSON {type(tasks).__name__}, but a Label Studio JSON export "
            "is a list of tasks. Export with the JSON format, not JSON_MIN or one task file."
        )
    return tasks


def read_annotations(
    path: str | os.PathLike[str],
    *,
    classes: Sequence[str],
    from_name: str | None = None,
) -> LabelStudioImport:
    """Read a Label Studio JSON export into votes, with counts of what was skipped.

    Cancelled annotations and annotations with no Choices result are skipped
    and counted. When one annotator annotated a row more than once, the
    latest annotation (by ``updated_at``, else ``created_at``) is kept.

    Args:
        path: The export file (Label Studio's JSON format).
        classes: Class names; every chosen label must be one of them.
        from_name: Name of the Choices tag to read; by default any single
            Choices tag, which matches the config :func:`export_tasks` writes.

    Raises:
        DataError: If the file is missing, not JSON or not a list of tasks, or a
            task or annotation is malformed (no row_id, no completed_by, a label
            outside ``classes``, more than one choice). The message names the
            task index and Label Studio id.
    """
    source = Path(path)
    allowed = frozenset(str(name) for name in classes)
    tasks = _load_tasks(source)

    latest: dict[tuple[int, str], Vote] = {}
    superseded: set[tuple[int, str]] = set()
    cancelled = empty = 0
    for task_index, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            raise DataError(
                f"task {task_index} in {source} is a JSON {type(task).__name__}, not an object."
            )
        row_id = _task_row_id(task, task_index, source)
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise DataError(
                f"{_where(task_index, task)} in {source} has annotations {annotations!r}; "
                "expected a list. Export with the JSON format, not JSON_MIN."
            )
        for annotation_index, annotation in enumerate(annotations):
            where = _where(task_index, task, annotation_index)
            if not isinstance(annotation, Mapping):
                raise DataError(f"{where} in {source} is not a JSON object.")
            if annotation.get("was_cancelled"):
                cancelled += 1
                continue
            label = _choice(annotation, where, source, allowed, from_name)
            if label is None:
                empty += 1
                continue
            annotator = _annotator_id(annotation.get("completed_by"), where, source)
            vote = Vote(
                row_id=row_id,
                annotator=annotator,
                label=label,
                answered_at=_timestamp(annotation, where, source),
            )
            key = (row_id, annotator)
            if key in latest:
                superseded.add(key)
                if vote.answered_at < latest[key].answered_at:
                    continue
            latest[key] = vote

    if cancelled or empty:
        logger.info(
            "Skipped %d cancelled and %d empty Label Studio annotations in %s.",
            cancelled,
            empty,
            source,
        )
    if superseded:
        logger.warning(
            "%d rows in %s hold several annotations by one annotator; kept the latest of each "
            "(first: row_id %d, annotator %s).",
            len(superseded),
            source,
            *min(superseded),
        )
    votes = [latest[key] for key in sorted(latest)]
    logger.info("Read %d votes from %d Label Studio tasks in %s.", len(votes), len(tasks), source)
    return LabelStudioImport(
        votes=votes,
        tasks=len(tasks),
        cancelled=cancelled,
        empty=empty,
        superseded=sorted(superseded),
    )


def import_annotations(
    path: str | os.PathLike[str],
    *,
    classes: Sequence[str],
    from_name: str | None = None,
) -> list[Vote]:
    """Return the votes of a Label Studio JSON export (see :func:`read_annotations`)."""
    return read_annotations(path, classes=classes, from_name=from_name).votes
