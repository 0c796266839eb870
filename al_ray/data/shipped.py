"""Real datasets shipped inside the package, checked against their sha256 on load.

The files lie in ``al_ray/datasets/<name>/`` next to a ``PROVENANCE.md`` that
records where each file came from, its license and its checksums. The
checksums are pinned here as well, so a damaged or replaced file is detected
even when its ``PROVENANCE.md`` was edited with it.

A text dataset (``sms_spam``) loads as hashed numeric features; its raw texts
come from :func:`load_shipped_texts`, for pages that show a row to a person.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from al_ray.data.text_features import (
    DEFAULT_HASH_FEATURES,
    hash_feature_names,
    hashed_text_features,
)
from al_ray.data.types import LabeledData
from al_ray.errors import DataError

__all__ = [
    "CREDIT_FEATURE_NAMES",
    "ELEC2_FEATURE_NAMES",
    "LETTER_FEATURE_NAMES",
    "SHIPPED_DATASETS",
    "ShippedDataset",
    "default_datasets_root",
    "load_shipped",
    "load_shipped_texts",
]

logger = logging.getLogger(__name__)

LETTER_FEATURE_NAMES: tuple[str, ...] = (
    "x-box", "y-box", "width", "high", "onpix", "x-bar", "y-bar", "x2bar",
    "y2bar", "xybar", "x2ybr", "xy2br", "x-ege", "xegvy", "y-ege", "yegvx",
)  # fmt: skip
"""Letter-recognition feature names, in the column order of ``letter-recognition.names``."""

ELEC2_FEATURE_NAMES: tuple[str, ...] = (
    "date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer",
)  # fmt: skip
"""Elec2 feature names, in the attribute order of ``elecNormNew.arff``."""

CREDIT_FEATURE_NAMES: tuple[str, ...] = (
    "LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE",
    "PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6",
    "BILL_AMT1", "BILL_AMT2", "BILL_AMT3", "BILL_AMT4", "BILL_AMT5", "BILL_AMT6",
    "PAY_AMT1", "PAY_AMT2", "PAY_AMT3", "PAY_AMT4", "PAY_AMT5", "PAY_AMT6",
)  # fmt: skip
"""Credit-default feature names for the file's columns X1..X23, as UCI documents them."""

_MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"
_MNIST_LABELS = "t10k-labels-idx1-ubyte.gz"
_LETTER_DATA = "letter-recognition.data"
_LETTER_NAMES = "letter-recognition.names"
_ELEC2_DATA = "elecNormNew.arff"
_CREDIT_DATA = "UCI_Credit_Card.csv"
_SMS_DATA = "SMSSpamCollection"

# Magic numbers of the IDX format: 0x0803 is unsigned bytes in 3 dimensions, 0x0801 in 1.
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049


def default_datasets_root() -> Path:
    """Return the folder that contains the shipped datasets, ``al_ray/datasets``."""
    return Path(__file__).resolve().parent.parent / "datasets"


@dataclass(frozen=True)
class ShippedDataset:
    """One dataset shipped with al_ray: its files, its size and where it came from."""

    name: str
    """Name passed to :func:`load_shipped`, also the folder name under the datasets root."""

    sha256: Mapping[str, str]
    """Expected sha256 hex digest of every file in the folder except ``PROVENANCE.md``."""

    n_rows: int
    n_features: int
    n_classes: int

    license: str
    """License as recorded in ``PROVENANCE.md``, which was written without checking it online."""

    source: str
    """Authors of the data and the publication to cite for it."""

    parse: Callable[[Path, str], LabeledData]
    """Parser that builds the dataset from its folder, after the checksums passed."""

    read_texts: Callable[[Path], list[str]] | None = None
    """Reader of the raw text of each row, in ``row_id`` order, for a text dataset; else None."""

    text_name: str | None = None
    """Name of the text column that :attr:`read_texts` returns."""


def _frozen(array: np.ndarray) -> np.ndarray:
    # Read-only at the base as well, so no caller can set the cached arrays writeable again.
    array.flags.writeable = False
    return array


def _read_idx(path: Path, magic: int, dims: int) -> tuple[tuple[int, ...], np.ndarray]:
    raw = gzip.decompress(path.read_bytes())
    header_size = 4 * (1 + dims)
    header = np.frombuffer(raw, dtype=">i4", count=1 + dims)
    if int(header[0]) != magic:
        raise DataError(
            f"{path} is not an IDX file with magic number {magic}: found {int(header[0])}."
        )
    shape = tuple(int(size) for size in header[1:])
    values = np.frombuffer(raw, dtype=np.uint8, offset=header_size)
    if values.size != int(np.prod(shape)):
        raise DataError(
            f"{path} contains {values.size} values, but its header gives shape {shape}."
        )
    return shape, values.reshape(shape)


def _parse_mnist(folder: Path, name: str) -> LabeledData:
    (n_images, height, width), pixels = _read_idx(folder / _MNIST_IMAGES, _IDX_IMAGES_MAGIC, 3)
    (n_labels,), digits = _read_idx(folder / _MNIST_LABELS, _IDX_LABELS_MAGIC, 1)
    if n_images != n_labels:
        raise DataError(f"{folder} contains {n_images} MNIST images but {n_labels} labels.")
    # Pixels are grey levels 0-255, so dividing by 255 scales the features to [0, 1].
    features = pixels.reshape(n_images, height * width).astype(np.float32) / np.float32(255.0)
    feature_names = tuple(f"pixel_{row}_{col}" for row in range(height) for col in range(width))
    return LabeledData(
        name=name,
        row_ids=_frozen(np.arange(n_images, dtype=np.int64)),
        features=_frozen(features),
        labels=_frozen(digits.astype(np.int64)),
        classes=tuple(str(digit) for digit in range(10)),
        feature_names=feature_names,
        image_shape=(height, width),
    )


def _parse_letters(folder: Path, name: str) -> LabeledData:
    path = folder / _LETTER_DATA
    lines = path.read_text(encoding="ascii").splitlines()
    letters: list[str] = []
    rows: list[list[int]] = []
    for line_index, line in enumerate(lines):
        fields = line.split(",")
        if len(fields) != 1 + len(LETTER_FEATURE_NAMES):
            raise DataError(
                f"{path} line {line_index + 1} has {len(fields)} fields; expected a letter "
                f"and {len(LETTER_FEATURE_NAMES)} integers."
            )
        letters.append(fields[0])
        rows.append([int(field) for field in fields[1:]])

    classes = tuple(string.ascii_uppercase)
    unknown = sorted(set(letters) - set(classes))
    if unknown:
        raise DataError(f"{path} has labels outside A-Z: {', '.join(map(repr, unknown))}.")
    labels = np.searchsorted(np.array(classes), np.array(letters))
    return LabeledData(
        name=name,
        row_ids=_frozen(np.arange(len(lines), dtype=np.int64)),
        features=_frozen(np.array(rows, dtype=np.float32)),
        labels=_frozen(labels.astype(np.int64)),
        classes=classes,
        feature_names=LETTER_FEATURE_NAMES,
    )


def _elec2_attributes(header: list[str], path: Path) -> None:
    attributes = [line.split()[1] for line in header if line.lower().startswith("@attribute")]
    expected = [*ELEC2_FEATURE_NAMES, "class"]
    if attributes != expected:
        raise DataError(f"{path} declares the attributes {attributes}; expected {expected}.")


def _parse_elec2(folder: Path, name: str) -> LabeledData:
    path = folder / _ELEC2_DATA
    text = path.read_text(encoding="ascii")
    header_text, marker, body = text.partition("@data")
    if not marker:
        raise DataError(f"{path} has no @data line, so it is not an ARFF file.")
    _elec2_attributes(header_text.splitlines(), path)

    lines = body.split()
    classes = ("DOWN", "UP")
    rows: list[list[float]] = []
    is_up: list[bool] = []
    for line_index, line in enumerate(lines):
        fields = line.split(",")
        if len(fields) != 1 + len(ELEC2_FEATURE_NAMES) or fields[-1] not in classes:
            raise DataError(
                f"{path} data row {line_index + 1} is {line!r}; expected "
                f"{len(ELEC2_FEATURE_NAMES)} numbers and a class UP or DOWN."
            )
        rows.append([float(field) for field in fields[:-1]])
        is_up.append(fields[-1] == "UP")

    # The day of week stays one ordinal column with its file values 1-7, so
    # each feature is one column of the file and drift tests see the day as one
    # few-valued feature. A model that needs one-hot days can expand the column.
    features = np.array(rows, dtype=np.float32)
    labels = np.array(is_up, dtype=np.int64)
    return LabeledData(
        name=name,
        row_ids=_frozen(np.arange(len(rows), dtype=np.int64)),
        features=_frozen(features),
        labels=_frozen(labels),
        classes=classes,
        feature_names=ELEC2_FEATURE_NAMES,
    )


_CREDIT_HEADER = ["ID", *(f"X{index}" for index in range(1, 24)), "Y"]


def _parse_credit(folder: Path, name: str) -> LabeledData:
    path = folder / _CREDIT_DATA
    # The file has Windows line ends; splitlines() removes them with the rest of the line end.
    lines = path.read_text(encoding="ascii").splitlines()
    if not lines or lines[0].split(",") != _CREDIT_HEADER:
        found = lines[0] if lines else "an empty file"
        raise DataError(f"{path} must start with the header {','.join(_CREDIT_HEADER)}; found {found!r}.")

    rows: list[list[float]] = []
    defaults: list[int] = []
    for line_number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        try:
            # Some cells are written in exponent form (5.00E+05), so parse floats.
            values = [float(field) for field in fields]
        except ValueError:
            values = []
        if len(values) != len(_CREDIT_HEADER) or values[-1] not in (0.0, 1.0):
            raise DataError(
                f"{path} line {line_number} is {line!r}; expected {len(_CREDIT_HEADER)} numbers "
                "ending in the label 0 or 1."
            )
        # Column 0 is the row number ID; it says nothing about the client, so it is no feature.
        rows.append(values[1:-1])
        defaults.append(int(values[-1]))

    return LabeledData(
        name=name,
        row_ids=_frozen(np.arange(len(rows), dtype=np.int64)),
        features=_frozen(np.array(rows, dtype=np.float32)),
        labels=_frozen(np.array(defaults, dtype=np.int64)),
        classes=("0", "1"),
        feature_names=CREDIT_FEATURE_NAMES,
    )


_SMS_CLASSES = ("ham", "spam")


def _read_sms(path: Path) -> tuple[list[str], list[str]]:
    """Return the label and the text of each line of the SMS collection, in file order."""
    labels: list[str] = []
    texts: list[str] = []
    # Lines end in a line feed. str.splitlines() would also split at the rarer
    # breaks (U+2028, form feed) that a message may contain.
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line_number, line in enumerate(lines, start=1):
        label, tab, text = line.partition("\t")
        if not tab or label not in _SMS_CLASSES:
            raise DataError(
                f"{path} line {line_number} is {line[:80]!r}; expected ham or spam, a tab, then the message."
            )
        labels.append(label)
        texts.append(text)
    return labels, texts


def _read_sms_texts(folder: Path) -> list[str]:
    return _read_sms(folder / _SMS_DATA)[1]


def _parse_sms(folder: Path, name: str) -> LabeledData:
    labels, texts = _read_sms(folder / _SMS_DATA)
    return LabeledData(
        name=name,
        row_ids=_frozen(np.arange(len(texts), dtype=np.int64)),
        features=_frozen(hashed_text_features(texts, DEFAULT_HASH_FEATURES)),
        labels=_frozen(np.array([label == "spam" for label in labels], dtype=np.int64)),
        classes=_SMS_CLASSES,
        feature_names=hash_feature_names(DEFAULT_HASH_FEATURES),
    )


SHIPPED_DATASETS: dict[str, ShippedDataset] = {
    "mnist_test": ShippedDataset(
        name="mnist_test",
        sha256={
            _MNIST_IMAGES: "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
            _MNIST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        n_rows=10_000,
        n_features=784,
        n_classes=10,
        license="CC BY-SA 3.0",
        source="Y. LeCun, C. Cortes, C. J. C. Burges; LeCun et al., Proc. IEEE 86(11), 1998",
        parse=_parse_mnist,
    ),
    "letter_recognition": ShippedDataset(
        name="letter_recognition",
        sha256={
            _LETTER_DATA: "2b89f3602cf768d3c8355267d2f13f2417809e101fc2b5ceee10db19a60de6e2",
            _LETTER_NAMES: "128b85adc32bd58a93ed6e1df136b1d7c636f85f290ba3db655ccaa19c86d324",
        },
        n_rows=20_000,
        n_features=16,
        n_classes=26,
        license="CC BY 4.0",
        source="D. J. Slate; Frey and Slate, Machine Learning 6(2), 1991",
        parse=_parse_letters,
    ),
    "elec2": ShippedDataset(
        name="elec2",
        sha256={
            _ELEC2_DATA: "2d86fbc74c69a5c04bcde0119bce280dd6d8efa0115987edc75b77ccf024d7f2",
        },
        n_rows=45_312,
        n_features=8,
        n_classes=2,
        license="public, as listed by OpenML (data id 151)",
        source="M. Harries, UNSW technical report, 1999; normalised by Gama et al., SBIA 2004",
        parse=_parse_elec2,
    ),
    "credit_default": ShippedDataset(
        name="credit_default",
        sha256={
            _CREDIT_DATA: "023eb2c3ad9efd15e7869616fa50a0143f25223105c7069ba632431530afdb61",
        },
        n_rows=30_000,
        n_features=23,
        n_classes=2,
        license="CC BY 4.0",
        source="I-C. Yeh; Yeh and Lien, Expert Systems with Applications 36(2), 2009",
        parse=_parse_credit,
    ),
    "sms_spam": ShippedDataset(
        name="sms_spam",
        sha256={
            _SMS_DATA: "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        },
        n_rows=5_574,
        n_features=DEFAULT_HASH_FEATURES,
        n_classes=2,
        license="CC BY 4.0",
        source="T. A. Almeida, J. M. Gomez Hidalgo; Almeida et al., ACM DocEng 2011",
        parse=_parse_sms,
        read_texts=_read_sms_texts,
        text_name="message",
    ),
}
"""Every dataset that :func:`load_shipped` can load, by name."""


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_files(spec: ShippedDataset, folder: Path) -> None:
    for file_name, expected in spec.sha256.items():
        path = folder / file_name
        if not path.is_file():
            raise DataError(
                f"shipped dataset {spec.name!r} is missing its file {path}. "
                "Restore it from git (git checkout -- al_ray/datasets) or reinstall al_ray."
            )
        actual = _sha256_of(path)
        if actual != expected:
            raise DataError(
                f"shipped dataset file {path} is damaged: its sha256 is {actual}, expected "
                f"{expected}. Restore it from git (git checkout -- al_ray/datasets) or "
                "reinstall al_ray."
            )


def _unknown_name(name: str) -> DataError:
    return DataError(
        f"unknown shipped dataset {name!r}; available: {', '.join(sorted(SHIPPED_DATASETS))}. "
        "For your own data, use a CSV, Parquet or NPZ file source instead."
    )


def _root_of(root: str | Path | None) -> str:
    folder_root = default_datasets_root() if root is None else Path(root).expanduser()
    return str(folder_root.resolve())


@lru_cache(maxsize=None)
def _load_cached(name: str, root: str) -> LabeledData:
    spec = SHIPPED_DATASETS[name]
    folder = Path(root) / name
    _verify_files(spec, folder)
    data = spec.parse(folder, name)
    logger.info(
        "loaded shipped dataset %s from %s: %d rows, %d features",
        name, folder, len(data), data.n_features,
    )
    return data


def load_shipped(name: str, root: str | Path | None = None) -> LabeledData:
    """Load a shipped real dataset after checking the sha256 of its files.

    The result is cached per process and its arrays are read-only, so every
    caller shares one copy and none can change it for the others.

    Args:
        name: A key of :data:`SHIPPED_DATASETS`: ``"mnist_test"`` (10,000 rows,
            784 pixel features scaled to [0, 1], classes ``"0"``..``"9"``,
            image_shape (28, 28)) or ``"letter_recognition"`` (20,000 rows, 16
            integer features 0-15, classes ``"A"``..``"Z"``) or ``"elec2"``
            (45,312 half-hourly rows in time order, 8 features: the day of
            week as 1-7 and seven columns normalised to [0, 1], classes
            ``"DOWN"`` and ``"UP"``) or ``"credit_default"`` (30,000 rows,
            the 23 unscaled columns X1..X23 named in
            :data:`CREDIT_FEATURE_NAMES`, classes ``"0"`` and ``"1"``, 1
            meaning a default next month; the file's ID column is dropped) or
            ``"sms_spam"`` (5,574 messages as 4,096 hashed word unigram and
            bigram features, see :func:`~al_ray.data.text_features.hashed_text_features`,
            classes ``"ham"`` and ``"spam"``). The ``row_id`` of a row is its
            index in the file, after the header line if there is one.
        root: Folder that contains one folder per dataset; defaults to the
            package's ``al_ray/datasets``.

    Raises:
        DataError: If the name is unknown, or a file is missing or damaged.
    """
    if name not in SHIPPED_DATASETS:
        raise _unknown_name(name)
    return _load_cached(name, _root_of(root))


@lru_cache(maxsize=None)
def _texts_cached(name: str, root: str) -> tuple[str, Mapping[int, str]] | None:
    spec = SHIPPED_DATASETS[name]
    if spec.read_texts is None or spec.text_name is None:
        return None
    folder = Path(root) / name
    _verify_files(spec, folder)
    texts = spec.read_texts(folder)
    if len(texts) != spec.n_rows:
        raise DataError(f"{folder} holds {len(texts)} texts; dataset {name!r} has {spec.n_rows} rows.")
    return spec.text_name, MappingProxyType(dict(enumerate(texts)))


def load_shipped_texts(name: str, root: str | Path | None = None) -> tuple[str, Mapping[int, str]] | None:
    """Load the raw text of every row of a shipped text dataset, after checking its files.

    The features of a text dataset are numbers computed from its texts; this
    returns the texts themselves, for a page that shows a row to a person.

    Args:
        name: A key of :data:`SHIPPED_DATASETS`.
        root: Folder that contains one folder per dataset; defaults to the
            package's ``al_ray/datasets``.

    Returns:
        The text column's name and a read-only mapping from ``row_id`` to
        text, or None when the dataset has no text column (every dataset but
        ``"sms_spam"``). Cached per process.

    Raises:
        DataError: If the name is unknown, or a file is missing or damaged.
    """
    if name not in SHIPPED_DATASETS:
        raise _unknown_name(name)
    return _texts_cached(name, _root_of(root))
