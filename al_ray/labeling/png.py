"""Greyscale PNG encoding of a flattened image row, with numpy and zlib only.

The layout follows the PNG Specification, Version 1.2, chapter 4 (libpng.org):
an 8-byte signature, then IHDR, IDAT and IEND chunks, each
``length | type | data | CRC-32 of type and data``. Pixels are 8-bit
greyscale (colour type 0), one filter byte 0 ("None") per scanline.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from al_ray.errors import DataError

__all__ = ["encode_png", "image_data_uri", "row_to_pixels"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode an 8-bit greyscale image, shape ``(height, width)``, dtype uint8, as PNG bytes."""
    image = np.asarray(pixels)
    if image.ndim != 2 or image.dtype != np.uint8 or 0 in image.shape:
        raise DataError(
            "encode_png needs a non-empty 2-D uint8 array, "
            f"got shape {image.shape} and dtype {image.dtype}."
        )
    height, width = image.shape
    # Bit depth 8, colour type 0 (greyscale), compression 0, filter 0, no interlace.
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    scanlines = np.hstack([np.zeros((height, 1), dtype=np.uint8), image])
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 9))
        + _chunk(b"IEND", b"")
    )


def row_to_pixels(
    values: Sequence[float] | np.ndarray, image_shape: Sequence[int], *, min_side_px: int = 112
) -> np.ndarray:
    """Turn one flattened feature row into uint8 pixels, scaled and enlarged for display.

    The row is reshaped to ``image_shape`` (height, width). Values in
    ``[0, 1]`` are multiplied by 255, values in ``[0, 255]`` are kept as grey
    levels, and any other range is stretched so its minimum is black and its
    maximum white. The image is then enlarged by an integer factor (nearest
    neighbour) until its shorter side is at least ``min_side_px``, so a
    28 x 28 digit stays sharp in a browser.

    Raises:
        DataError: If the row contains non-finite values or does not fit ``image_shape``.
    """
    height, width = (int(size) for size in image_shape)
    try:
        row = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(
            f"an image row must be numeric, got {type(values).__name__} {str(values)[:40]!r}."
        ) from None
    if height <= 0 or width <= 0 or row.size != height * width:
        raise DataError(
            f"an image row of {row.size} values does not fit image_shape "
            f"({height}, {width}); height * width must equal the number of features."
        )
    if not np.isfinite(row).all():
        raise DataError("an image row contains NaN or inf values, which have no pixel value.")
    low, high = float(row.min()), float(row.max())
    if low >= 0 and high <= 1:
        levels = row * 255.0
    elif low >= 0 and high <= 255:
        levels = row
    elif high > low:
        levels = (row - low) * (255.0 / (high - low))
    else:
        levels = np.zeros_like(row)
    pixels = np.rint(levels).astype(np.uint8).reshape(height, width)
    factor = max(1, -(-min_side_px // min(height, width)))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def image_data_uri(values: Sequence[float] | np.ndarray, image_shape: Sequence[int]) -> str:
    """Return one flattened feature row as a ``data:image/png;base64,...`` URI."""
    encoded = base64.b64encode(encode_png(row_to_pixels(values, image_shape))).decode("ascii")
    return f"data:image/png;base64,{encoded}"
