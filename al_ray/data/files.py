"""A labeled dataset from the user's own CSV, Parquet or NPZ file.

:func:`load_table` reads the file, picks the label column, the optional
``row_id`` column and the feature columns, and checks every value before it
builds a :class:`~al_ray.data.types.LabeledData`. Each problem it finds raises
:class:`~al_ray.errors.DataError` with the file, the column or key, the
offending values and the fix.
"""

from __future__ import annotations

import logging
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from al_ray.data.types import LabeledData, format_ids
from al_ray.errors import DataError

__all__ = ["FILE_FORMATS", "load_table"]

logger = logging.getLogger(__name__)

FILE_FORMATS: tuple[str, ...] = ("csv", "parquet", "npz")
"""Formats that :func:`load_table` reads."""

_FORMAT_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
# pandas decompresses a CSV by its suffix, so "pool.csv.gz" is read as CSV.
_COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zip", ".zst"})
_NPZ_FEATURE_KEYS = ("features", "X")
_NPZ_FEATURE_NAMES_KEY = "feature_names"
# How many column names an error message lists before "and N more".
_SHOWN_COLUMNS = 20
# Whole float labels up to 2**53 convert to int exactly; larger floats keep their float text.
_MAX_EXACT_FLOAT_INT = 2.0**53


@dataclass(frozen=True)
class _Columns:
    """The parts of a file before validation, still in the file's own types."""

    feature_values: np.ndarray | pd.DataFrame  # (n_rows, n_features)
    feature_names: tuple[str, ...]
    labels: pd.Series  # (n_rows,)
    row_ids: pd.Series | None  # (n_rows,)
    image_shape: tuple[int, int] | None = None


def _list_names(names: Sequence[str]) -> str:
    return format_ids([repr(name) for name in names], limit=_SHOWN_COLUMNS)


def _resolve_format(path: Path, file_format: str | None) -> str:
    if file_format is not None:
        normalized = file_format.lower().lstrip(".")
        if normalized not in FILE_FORMATS:
            raise DataError(
                f"file_format {file_format!r} is not supported; use one of "
                f"{', '.join(FILE_FORMATS)}."
            )
        return normalized

    suffixes = [suffix.lower() for suffix in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSION_SUFFIXES and suffixes[-2] == ".csv":
        return "csv"
    if suffixes and suffixes[-1] in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffixes[-1]]
    raise DataError(
        f"cannot tell the format of {path} from its suffix {path.suffix!r}; supported formats "
        "are csv (.csv, also compressed as .csv.gz), parquet (.parquet, .pq) and npz (.npz). "
        "Rename the file or pass file_format='csv', 'parquet' or 'npz'."
    )


def _default_name(path: Path) -> str:
    known = _COMPRESSION_SUFFIXES | set(_FORMAT_BY_SUFFIX)
    name = path.name
    while Path(name).suffix.lower() in known and Path(name).stem:
        name = Path(name).stem
    return name


def _read_frame(path: Path, file_format: str) -> pd.DataFrame:
    if path.is_dir() and file_format == "csv":
        raise DataError(f"{path} is a folder; pass the path of one CSV file.")
    try:
        if file_format == "csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path} is empty; expected a header row and data rows.") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(
            f"{path} could not be parsed as CSV: {error}. Check the delimiter (a comma is "
            "expected) and that the file is UTF-8 text."
        ) from error
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(f"{path} could not be read as {file_format}: {error}") from error
    frame.columns = [str(column) for column in frame.columns]
    return frame


def _require_column(
    column: str, available: Sequence[str], path: Path, role: str, option: str, kind: str
) -> None:
    # kind is "columns" for tables and "keys" for NPZ archives.
    if column not in available:
        raise DataError(
            f"{role} {column!r} not found in {path}; available {kind}: "
            f"{_list_names(available)}. Pass one of them as {option}."
        )


def _pick_feature_names(
    available: Sequence[str],
    feature_columns: Sequence[str] | None,
    label_column: str,
    row_id_column: str | None,
    path: Path,
) -> list[str]:
    reserved = {label_column} if row_id_column is None else {label_column, row_id_column}
    if feature_columns is None:
        chosen = [name for name in available if name not in reserved]
        if not chosen:
            raise DataError(
                f"{path} has no feature columns besides the label column {label_column!r}"
                + ("" if row_id_column is None else f" and the row_id column {row_id_column!r}")
                + "; add the feature columns to the file."
            )
        return chosen

    if isinstance(feature_columns, str):
        raise DataError(
            f"feature_columns must be a list of column names, got the string {feature_columns!r}; "
            f"write [{feature_columns!r}] for one column."
        )
    chosen = [str(name) for name in feature_columns]
    if not chosen:
        raise DataError(
            "feature_columns is empty; name at least one feature column or pass None for all."
        )
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise DataError(
            f"feature columns {_list_names(unknown)} not found in {path}; available columns: "
            f"{_list_names(available)}."
        )
    clashing = [name for name in chosen if name in reserved]
    if clashing:
        raise DataError(
            f"feature_columns contains {_list_names(clashing)}, which is the label or row_id "
            "column; remove it from feature_columns."
        )
    repeated = sorted({name for name in chosen if chosen.count(name) > 1})
    if repeated:
        raise DataError(
            f"feature_columns names {_list_names(repeated)} more than once; list each column once."
        )
    return chosen


def _numeric_feature_values(frame: pd.DataFrame, row_ids: np.ndarray, path: Path) -> np.ndarray:
    for name in list(frame.columns):
        column = frame[name]
        if pd.api.types.is_bool_dtype(column.dtype) or (
            pd.api.types.is_numeric_dtype(column.dtype)
            and not pd.api.types.is_complex_dtype(column.dtype)
        ):
            continue
        as_numbers = pd.to_numeric(column, errors="coerce")
        not_numbers = column.notna().to_numpy() & as_numbers.isna().to_numpy()
        if not_numbers.any():
            position = int(np.flatnonzero(not_numbers)[0])
            raise DataError(
                f"feature column {name!r} in {path} is not numeric (dtype {column.dtype}, value "
                f"{column.iloc[position]!r} at row_id {row_ids[position]}). Encode {name!r} as "
                "numbers or leave it out by passing feature_columns."
            )
        frame = frame.assign(**{name: as_numbers})
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def _columns_from_frame(
    frame: pd.DataFrame,
    path: Path,
    label_column: str,
    row_id_column: str | None,
    feature_columns: Sequence[str] | None,
) -> _Columns:
    available = list(frame.columns)
    _require_column(label_column, available, path, "label column", "label_column", "columns")
    if row_id_column is not None:
        _require_column(
            row_id_column, available, path, "row_id column", "row_id_column", "columns"
        )
    names = _pick_feature_names(available, feature_columns, label_column, row_id_column, path)
    return _Columns(
        feature_values=frame[names].reset_index(drop=True),
        feature_names=tuple(names),
        labels=frame[label_column].reset_index(drop=True),
        row_ids=None if row_id_column is None else frame[row_id_column].reset_index(drop=True),
    )


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as error:
        raise DataError(
            f"array {key!r} in {path} contains Python objects, which al_ray does not unpickle. "
            "Save it with a string or numeric dtype, for example np.asarray(values, dtype=str)."
        ) from error


def _npz_features(
    archive: np.lib.npyio.NpzFile, path: Path
) -> tuple[np.ndarray, tuple[str, ...], tuple[int, int] | None]:
    keys = list(archive.files)
    present = [key for key in _NPZ_FEATURE_KEYS if key in keys]
    if not present:
        raise DataError(
            f"{path} has no feature array; expected the key 'features' or 'X', found keys "
            f"{_list_names(keys)}. Save the feature matrix under 'features'."
        )
    if len(present) > 1:
        raise DataError(
            f"{path} has both 'features' and 'X' arrays, so the feature matrix is ambiguous; "
            "keep only one of them."
        )
    key = present[0]
    values = _npz_array(archive, key, path)
    if values.dtype.kind not in "biuf":
        raise DataError(
            f"array {key!r} in {path} must be numeric, got dtype {values.dtype}; encode the "
            "features as numbers."
        )

    if values.ndim == 3:
        n_rows, height, width = values.shape
        names = tuple(f"pixel_{row}_{col}" for row in range(height) for col in range(width))
        return values.reshape(n_rows, height * width), names, (height, width)
    if values.ndim != 2:
        raise DataError(
            f"array {key!r} in {path} must have shape (n_rows, n_features), or "
            f"(n_rows, height, width) for images; got shape {values.shape}."
        )

    if _NPZ_FEATURE_NAMES_KEY not in keys:
        return values, tuple(f"feature_{index}" for index in range(values.shape[1])), None
    names_array = _npz_array(archive, _NPZ_FEATURE_NAMES_KEY, path)
    if names_array.shape != (values.shape[1],):
        raise DataError(
            f"array 'feature_names' in {path} has shape {names_array.shape}, but {key!r} has "
            f"{values.shape[1]} columns; store one name per column."
        )
    return values, tuple(str(name) for name in names_array.tolist()), None


def _npz_vector(archive: np.lib.npyio.NpzFile, key: str, n_rows: int, path: Path) -> pd.Series:
    values = _npz_array(archive, key, path)
    if values.shape != (n_rows,):
        raise DataError(
            f"array {key!r} in {path} must have shape ({n_rows},), one value per feature row; "
            f"got shape {values.shape}."
        )
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8")
    return pd.Series(values)


def _columns_from_npz(
    path: Path,
    label_column: str,
    row_id_column: str | None,
    feature_columns: Sequence[str] | None,
) -> _Columns:
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass the path of one .npz file.")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} could not be read as an NPZ archive: {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path} contains a single .npy array, not an NPZ archive; save it with "
            "np.savez(path, features=..., <label_column>=...)."
        )

    with archive:
        keys = list(archive.files)
        _require_column(label_column, keys, path, "label array", "label_column", "keys")
        if row_id_column is not None:
            _require_column(row_id_column, keys, path, "row_id array", "row_id_column", "keys")
        values, names, image_shape = _npz_features(archive, path)
        labels = _npz_vector(archive, label_column, values.shape[0], path)
        row_ids = None
        if row_id_column is not None:
            row_ids = _npz_vector(archive, row_id_column, values.shape[0], path)

    if feature_columns is not None:
        chosen = _pick_feature_names(names, feature_columns, label_column, row_id_column, path)
        positions = [names.index(name) for name in chosen]
        if list(positions) != list(range(len(names))):
            image_shape = None
        values = values[:, positions]
        names = tuple(chosen)
    return _Columns(values, names, labels, row_ids, image_shape)


def _checked_row_ids(
    values: pd.Series | None, n_rows: int, path: Path, column: str | None
) -> np.ndarray:
    if values is None:
        return np.arange(n_rows, dtype=np.int64)

    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"row_id column {column!r} in {path} is empty in {int(missing.sum())} rows (data rows "
            f"{format_ids(np.flatnonzero(missing))}); give every row an integer id."
        )
    is_integer = pd.api.types.is_integer_dtype(values.dtype)
    if not (is_integer or pd.api.types.is_float_dtype(values.dtype)):
        raise DataError(
            f"row_id column {column!r} in {path} must hold integers, got dtype {values.dtype} "
            f"(first value {values.iloc[0]!r}). Pass row_id_column=None to number the rows 0..n-1."
        )
    int64 = np.iinfo(np.int64)
    if is_integer:
        if pd.api.types.is_unsigned_integer_dtype(values.dtype) and int(values.max()) > int64.max:
            raise DataError(
                f"row_id column {column!r} in {path} contains values above the int64 maximum."
            )
        row_ids = values.to_numpy(dtype=np.int64)
    else:
        numbers = values.to_numpy(dtype=np.float64)
        fractional = np.flatnonzero(numbers != np.round(numbers))
        if fractional.size:
            raise DataError(
                f"row_id column {column!r} in {path} must hold integers, got "
                f"{format_ids(numbers[fractional])}."
            )
        # 2**63 is exactly representable in float64, so >= excludes every value past int64.
        if numbers.min() < int64.min or numbers.max() >= 2.0**63:
            raise DataError(
                f"row_id column {column!r} in {path} contains values outside the int64 range."
            )
        row_ids = numbers.astype(np.int64)

    unique, counts = np.unique(row_ids, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size:
        raise DataError(
            f"row_id column {column!r} in {path} must be unique, but {repeated.size} ids repeat: "
            f"{format_ids(repeated)}. Fix the ids or pass row_id_column=None to number the rows "
            "0..n-1."
        )
    return row_ids


def _checked_features(
    values: np.ndarray, names: tuple[str, ...], row_ids: np.ndarray, path: Path
) -> np.ndarray:
    wide = values.astype(np.float64, copy=False)
    bad = ~np.isfinite(wide)
    if bad.any():
        bad_rows = row_ids[bad.any(axis=1)]
        bad_columns = [names[index] for index in np.flatnonzero(bad.any(axis=0))]
        raise DataError(
            f"features in {path} contain {int(bad.sum())} NaN or inf values in {bad_rows.size} "
            f"rows (row_ids {format_ids(bad_rows)}), in columns {_list_names(bad_columns)}. "
            "Impute those values or drop the rows before loading."
        )
    overflow = np.abs(wide) > np.finfo(np.float32).max
    if overflow.any():
        bad_rows = row_ids[overflow.any(axis=1)]
        raise DataError(
            f"features in {path} contain {int(overflow.sum())} values beyond the float32 range "
            f"(about ±3.4e38) in rows with row_ids {format_ids(bad_rows)}. Rescale those features."
        )
    return wide.astype(np.float32)


def _label_text(value: object) -> str | None:
    # None marks a missing label.
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return None
        if number.is_integer() and abs(number) <= _MAX_EXACT_FLOAT_INT:
            return str(int(number))
        return repr(number)
    return str(value)


def _encode_labels(
    values: pd.Series, row_ids: np.ndarray, path: Path, column: str
) -> tuple[tuple[str, ...], np.ndarray]:
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        texts = values.to_numpy(dtype=np.int64).astype(str).astype(object)
    else:
        texts = np.array(
            [_label_text(value) for value in values.to_numpy(dtype=object)], dtype=object
        )

    missing = np.array([text is None for text in texts], dtype=bool)
    if missing.any():
        raise DataError(
            f"label column {column!r} in {path} is missing, empty or non-finite in "
            f"{int(missing.sum())} rows (row_ids {format_ids(row_ids[missing])}). Fill in those "
            "labels or drop the rows; rows still to be labeled belong in the unlabeled pool."
        )
    classes, labels = np.unique(texts.astype(str), return_inverse=True)
    return tuple(str(name) for name in classes), labels.astype(np.int64)


def load_table(
    path: str | Path,
    label_column: str,
    *,
    row_id_column: str | None = None,
    feature_columns: Sequence[str] | None = None,
    file_format: str | None = None,
    name: str | None = None,
) -> LabeledData:
    """Load a labeled dataset from a CSV, Parquet or NPZ file.

    CSV and Parquet files hold one column per feature plus the label column.
    An NPZ archive contains the feature matrix under the key ``"features"`` or
    ``"X"`` (shape ``(n_rows, n_features)``, or ``(n_rows, height, width)``
    for images), the labels under ``label_column`` and optionally the feature
    names under ``"feature_names"``.

    Labels become class names as text. Whole numbers become their decimal
    text, so a float label 7.0 is the class ``"7"``.

    Args:
        path: The file. Its suffix picks the format unless ``file_format`` is given.
        label_column: Column (or NPZ key) that contains the class of each row.
        row_id_column: Column (or NPZ key) of unique integer row ids. If None,
            the rows are numbered 0..n-1 in file order.
        feature_columns: Columns to use as features, in this order. If None,
            every column except the label and row_id columns.
        file_format: ``"csv"``, ``"parquet"`` or ``"npz"``, to override the suffix.
        name: Dataset name; defaults to the file name without its suffixes.

    Returns:
        The dataset, with float32 features and int64 row_ids.

    Raises:
        DataError: If the file is missing or unreadable, a named column is
            absent, a feature is not numeric or not finite, a label is missing,
            or the row ids are not unique integers.
    """
    requested_path = Path(path).expanduser()
    resolved = requested_path.resolve()
    if not resolved.exists():
        hint = "" if requested_path.is_absolute() else f" (relative paths start at {Path.cwd()})"
        raise DataError(f"data file {resolved} not found; check the path{hint}.")
    chosen_format = _resolve_format(resolved, file_format)

    if chosen_format == "npz":
        columns = _columns_from_npz(resolved, label_column, row_id_column, feature_columns)
    else:
        frame = _read_frame(resolved, chosen_format)
        columns = _columns_from_frame(frame, resolved, label_column, row_id_column, feature_columns)

    n_rows = len(columns.labels)
    if n_rows == 0:
        raise DataError(f"{resolved} has no data rows; add rows to the file.")
    row_ids = _checked_row_ids(columns.row_ids, n_rows, resolved, row_id_column)
    values = columns.feature_values
    if isinstance(values, pd.DataFrame):
        values = _numeric_feature_values(values, row_ids, resolved)
    features = _checked_features(values, columns.feature_names, row_ids, resolved)
    classes, labels = _encode_labels(columns.labels, row_ids, resolved, label_column)

    data = LabeledData(
        name=name if name is not None else _default_name(resolved),
        row_ids=row_ids,
        features=features,
        labels=labels,
        classes=classes,
        feature_names=columns.feature_names,
        image_shape=columns.image_shape,
    )
    logger.info(
        "loaded %s from %s: %d rows, %d features, %d classes",
        data.name, resolved, len(data), data.n_features, data.n_classes,
    )
    return data
