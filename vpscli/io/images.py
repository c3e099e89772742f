"""Reading one frame image (JPEG, PNG, BMP, TIFF) as RGB: the one reader of frame folders and training data.

A JPEG or PNG cut short (a copy stopped part-way, a full disk) still decodes in OpenCV: libjpeg fills the
missing rows with grey and prints "Premature end of JPEG file" to stderr, so a damaged frame would be
segmented (or trained on) as if it were whole. :func:`cut_short` finds such files from their bytes before
decoding: a JPEG must have an end-of-image marker after its last start-of-scan, a PNG its ``IEND`` chunk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vpscli.errors import InputError

__all__ = ["read_rgb", "cut_short"]

_JPEG_START = b"\xff\xd8"
_JPEG_SCAN = b"\xff\xda"  # start of scan: entropy-coded data follows (stuffed, so no marker inside)
_JPEG_END = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cut_short(data: bytes) -> str | None:
    """Why the image file ``data`` is incomplete, or ``None`` (complete, or a format not checked).

    JPEG: no end-of-image marker after the last start-of-scan (bytes after the marker, as some cameras
    append, are fine). PNG: no ``IEND`` chunk.
    """
    if data.startswith(_JPEG_START):
        scan = data.rfind(_JPEG_SCAN)
        if scan < 0 or data.find(_JPEG_END, scan) < 0:
            return "the JPEG ends before its end-of-image marker (the file is cut short)"
    elif data.startswith(_PNG_SIGNATURE):
        if data.rfind(b"IEND") < 0:
            return "the PNG has no IEND chunk (the file is cut short)"
    return None


def read_rgb(path: str | Path) -> np.ndarray:
    """The image at ``path`` as ``(H, W, 3)`` uint8 RGB (grey, alpha and 16-bit images converted as OpenCV
    does); a one-line :class:`InputError` naming the file when it cannot be read, is not an image, or is
    cut short."""
    import cv2

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(
            f"cannot read ({e.strerror or e})", path=path, fix="check the file's permissions"
        ) from None
    reason = cut_short(data)
    if reason is not None:
        raise InputError(
            f"damaged frame: {reason}", path=path, fix="replace the file with a whole copy, or remove it"
        )
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise InputError("cannot read this image", path=path, fix="replace the damaged file, or remove it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
