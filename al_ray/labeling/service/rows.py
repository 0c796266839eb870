"""Rows as the labeling page shows them: an image, a text, or a table of features.

:class:`RowSource` looks up a pool row by ``row_id`` in the run's dataset and
turns it into a JSON payload. Its ``display`` field names the form in which
the page draws the row. The payload never says whether the row is a gold row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from al_ray.data import LabeledData
from al_ray.errors import ConfigError, DataError

if TYPE_CHECKING:
    from al_ray.config import RunConfig

__all__ = ["DISPLAYS", "RowSource"]

logger = logging.getLogger(__name__)

DISPLAYS = ("image", "text", "table")
"""Forms in which the page draws a row."""

# Channels of an image row, stored last: grey, RGB, RGBA.
_CHANNELS = (1, 3, 4)


class RowSource:
    """Features of the run's rows by ``row_id``, and how the labeling page shows them.

    Parameters
    ----------
    data
        The run's dataset.
    display
        ``"image"``, ``"text"``, ``"table"``, or ``"auto"``: an image when
        the features form ``image_shape``, else text when ``texts`` is given,
        else a table.
    image_shape
        ``(height, width)`` of a greyscale image, or ``(height, width,
        channels)`` with 1, 3 or 4 channels stored last; defaults to the
        dataset's own.
    texts
        Text of each row by ``row_id``, for rows whose text is not among the
        numeric features (a message column next to its embedding, say).
    text_name
        Name of the text column, shown above the text.

    Raises
    ------
    ConfigError
        If the chosen display cannot show this dataset.
    """

    def __init__(
        self,
        data: LabeledData,
        *,
        display: str = "auto",
        image_shape: Sequence[int] | None = None,
        texts: Mapping[int, str] | None = None,
        text_name: str | None = None,
    ) -> None:
        self._data = data
        self._texts = dict(texts) if texts is not None else None
        self._text_name = text_name
        self._image_shape = self._checked_image_shape(image_shape, display)
        self.display = self._resolve_display(display)

    @classmethod
    def from_config(cls, config: RunConfig, data: LabeledData | None = None) -> RowSource:
        """Build the row source of a run config, loading its dataset as the loop does."""
        from al_ray.loop.runner import load_data

        data = data if data is not None else load_data(config)
        labeling = config.labeling
        display = getattr(labeling, "display", "auto")
        image_shape = getattr(labeling, "image_shape", None)
        texts, text_name = None, None
        if display in ("auto", "text"):
            if config.data.path is not None:
                texts, text_name = _read_text_column(config, data)
            elif config.data.dataset is not None:
                # A shipped text dataset (sms_spam) keeps its raw text beside the hashed features.
                from al_ray.data.shipped import load_shipped_texts

                shipped = load_shipped_texts(config.data.dataset)
                if shipped is not None:
                    text_name, texts = shipped[0], dict(shipped[1])
        return cls(data, display=display, image_shape=image_shape, texts=texts, text_name=text_name)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the dataset, sorted as strings."""
        return self._data.classes

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """``(height, width)`` or ``(height, width, channels)`` of the images, or None when rows are not images."""
        return self._image_shape

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Name of each feature column."""
        return self._data.feature_names

    def values_of(self, row_ids: Sequence[int]) -> list[Any]:
        """Return what to show for each of ``row_ids``: its text when the display is text, else its features."""
        if self.display == "text":
            assert self._texts is not None  # set whenever display is text
            return [self._texts.get(int(row_id), "") for row_id in row_ids]
        positions = self._data.positions(list(row_ids))
        return list(self._data.features[positions])

    def label_of(self, row_id: int) -> str:
        """Return the dataset's own class of ``row_id`` (for simulated annotators and tests)."""
        return self._data.label_names([row_id])[0]

    def features_of(self, row_id: int) -> np.ndarray:
        """Return the features of ``row_id``, shape ``(n_features,)``, float32, read-only.

        Raises
        ------
        DataError
            If ``row_id`` is not in the dataset.
        """
        return self._data.features[int(self._data.positions([row_id])[0])]

    def row(self, row_id: int) -> dict[str, Any]:
        """Return the page's payload for ``row_id``.

        Raises
        ------
        DataError
            If ``row_id`` is not in the dataset.
        """
        features = self.features_of(row_id)
        if self.display == "image":
            assert self._image_shape is not None  # set whenever display is image
            height, width, *channels = self._image_shape
            return {
                "display": "image",
                "height": height,
                "width": width,
                "channels": channels[0] if channels else 1,
                "pixels": _levels(features),
            }
        if self.display == "text":
            assert self._texts is not None  # set whenever display is text
            return {"display": "text", "name": self._text_name, "text": self._texts.get(int(row_id), "")}
        return {
            "display": "table",
            "columns": [
                [name, _rounded(value)] for name, value in zip(self._data.feature_names, features.tolist())
            ],
        }

    def _checked_image_shape(self, image_shape: Sequence[int] | None, display: str) -> tuple[int, ...] | None:
        shape = tuple(int(size) for size in image_shape) if image_shape is not None else self._data.image_shape
        if shape is None:
            return None
        n_features = self._data.n_features
        fits = (
            len(shape) in (2, 3)
            and min(shape) > 0
            and (len(shape) == 2 or shape[2] in _CHANNELS)
            and math.prod(shape) == n_features
        )
        if not fits:
            if display == "image" or image_shape is not None:
                raise ConfigError(
                    f"labeling.image_shape {list(shape)} does not fit the {n_features} features of dataset "
                    f"{self._data.name!r}; give [height, width] or [height, width, channels] (channels 1, 3 "
                    f"or 4, stored last) whose product is {n_features}"
                )
            return None
        return shape

    def _resolve_display(self, display: str) -> str:
        if display == "auto":
            if self._image_shape is not None:
                return "image"
            return "text" if self._texts is not None else "table"
        if display == "image" and self._image_shape is None:
            raise ConfigError(
                f"labeling.display is image, but dataset {self._data.name!r} has no image shape; "
                "set labeling.image_shape to [height, width], or use display: table"
            )
        if display == "text" and self._texts is None:
            raise ConfigError(
                f"labeling.display is text, but dataset {self._data.name!r} has no text column; "
                "give data.path a file with a text column that is not a feature, or use display: table"
            )
        if display not in DISPLAYS:
            raise ConfigError(f"unknown labeling.display {display!r}; choose auto, {', '.join(DISPLAYS)}")
        return display


def _levels(features: np.ndarray) -> list[int]:
    """Scale one row's pixel values to levels 0-255.

    Features in [0, 1] are scaled by 255, features in [0, 255] are kept, and
    any other range is stretched from its minimum to its maximum.
    """
    low, high = float(features.min()), float(features.max())
    if low >= 0 and high <= 1:
        levels = features * 255.0
    elif low >= 0 and high <= 255:
        levels = features
    else:
        levels = (features - low) * (255.0 / (high - low))
    return np.rint(levels).astype(np.uint8).tolist()


def _rounded(value: float) -> float | None:
    # Features are float32, whose 7 significant digits are all that is meaningful to show.
    return float(f"{value:.7g}") if math.isfinite(value) else None


def _read_text_column(config: RunConfig, data: LabeledData) -> tuple[dict[int, str] | None, str | None]:
    """Return the first non-numeric column of ``data.path`` that is not a feature, label or id, by row_id."""
    import pandas as pd

    path = Path(config.data.path or "")
    suffixes = "".join(path.suffixes).lower()
    if ".csv" in suffixes:
        frame = pd.read_csv(path)
    elif ".parquet" in suffixes or ".pq" in suffixes:
        frame = pd.read_parquet(path)
    else:
        return None, None
    ignored = {config.data.label_column, config.data.row_id_column, *data.feature_names}
    candidates = [
        name for name in frame.columns
        if name not in ignored and not pd.api.types.is_numeric_dtype(frame[name].dtype)
        and not pd.api.types.is_bool_dtype(frame[name].dtype)
    ]
    if not candidates:
        return None, None
    name = str(candidates[0])
    if config.data.row_id_column is not None:
        row_ids = frame[config.data.row_id_column].to_numpy(dtype=np.int64)
    else:
        row_ids = np.arange(len(frame), dtype=np.int64)
    if len(row_ids) != len(data):
        raise DataError(
            f"{path} has {len(row_ids)} rows, but the dataset loaded from it has {len(data)}; "
            "the file changed while it was read, so load it again"
        )
    texts = {int(row_id): "" if pd.isna(text) else str(text) for row_id, text in zip(row_ids, frame[name])}
    logger.info("labeling page shows column %r of %s as text", name, path)
    return texts, name
