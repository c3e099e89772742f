"""Mask PNGs: what vps writes and what it accepts.

Written: 8-bit single-channel PNG, 0/255 for binary masks, ``floor(255·p)`` for
probability maps (the benchmark format). Files are written to a temporary name and
renamed, so an interrupted run never leaves a half-written PNG.

Read: 8-bit grayscale as is; and, each said in :attr:`MaskImage.note` (and named by
:attr:`MaskImage.kind`, one of :data:`CONVERSIONS`), 1-bit PNGs (→ 0/255), palette PNGs
(index > 0 is foreground → 255), 16-bit (scaled to 8 bits), 0/1-valued masks (→ 0/255),
RGB/RGBA (grey → that grey; coloured → non-black is foreground).

8-bit greyscale PNGs — nearly every mask, and the only input of the SUN-SEG toolbox — are
decoded by OpenCV, as the toolbox does: the array is the toolbox's, byte for byte, and
``vps evaluate`` stays as fast as with ``cv2.imread`` alone (Pillow is ~15 % slower at 1080p).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpscli.errors import InputError
from vpscli.io.atomic import write_bytes_atomic
from vpscli.io.mask_png import mask_png_bytes
from vpscli.io.naming import natural_sorted

MASK_EXTENSIONS = frozenset({".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"})

#: :attr:`MaskImage.kind` of each conversion ``read_mask`` makes (``None``: 8-bit grey, read as is).
CONVERSIONS = ("1-bit", "palette", "16-bit", "0/1", "grey-rgb", "colour", "other")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class MaskImage:
    """A mask read from disk: ``array`` is ``(H, W)`` uint8; ``note`` says what was converted.

    ``kind`` names the conversion (one of :data:`CONVERSIONS`, ``None`` when the file was 8-bit grey
    used as is), so that a command reading many files can report each kind once.
    """

    array: np.ndarray
    source_mode: str
    note: str | None = None
    kind: str | None = None


def _damage(path, error: Exception) -> str:
    """Why an image could not be read, in words: an empty file says so; else the decoder's error."""
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty, 0 bytes"
    except OSError:
        pass
    return error.__class__.__name__


def _is_8bit_grey_png(path: Path) -> bool:
    """True when the PNG header says 8-bit greyscale (IHDR bit depth 8, colour type 0).

    Only the header is read here: if the rest of the file is damaged, OpenCV returns nothing and the
    Pillow path names the problem.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    return (
        len(head) == 26
        and head[:8] == _PNG_SIGNATURE
        and head[12:16] == b"IHDR"
        and head[24:26] == b"\x08\x00"
    )


def _scaled_01(arr: np.ndarray, mode: str) -> MaskImage | None:
    """A uint8 mask whose only values are 0 and 1 → 0/255 (a 0/1 mask would read as nearly black).

    For uint8, "max is 1" is the same test as "values are a subset of {0, 1} and include 1", and
    ``max`` costs ~50× less than ``np.unique`` on a 1080p frame.
    """
    if arr.max(initial=0) == 1:
        return MaskImage(arr * np.uint8(255), mode, "0/1 mask scaled to 0/255", "0/1")
    return None


def read_mask(path: str | Path) -> MaskImage:
    """Read a mask or probability map as ``(H, W)`` uint8 (see the module doc for conversions)."""
    path = Path(path)
    if path.suffix.lower() == ".png" and _is_8bit_grey_png(path):
        import cv2

        # the SUN-SEG toolbox's own reader: same bytes as Pillow's "L" decode, and faster
        arr = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if arr is not None and arr.ndim == 2:
            return _scaled_01(arr, "L") or MaskImage(arr, "L")
    return _read_with_pillow(path)


def _read_with_pillow(path: Path) -> MaskImage:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "1":
                return MaskImage(
                    np.asarray(im, dtype=np.uint8) * 255, mode, "1-bit image expanded to 0/255", "1-bit"
                )
            if mode == "P":
                idx = np.asarray(im)
                return MaskImage(
                    np.where(idx > 0, 255, 0).astype(np.uint8),
                    mode,
                    "palette image: index > 0 taken as foreground (255)",
                    "palette",
                )
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im).astype(np.int64)
                if a.max(initial=0) == 1:
                    return MaskImage((a * 255).astype(np.uint8), mode, "0/1 mask scaled to 0/255", "0/1")
                return MaskImage(
                    np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8),
                    mode,
                    "16-bit image scaled to 8 bits",
                    "16-bit",
                )
            if mode in ("RGB", "RGBA", "LA"):
                a = np.asarray(im.convert("RGB"))
                if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]):
                    arr, kind = a[..., 0].copy(), "grey-rgb"
                    note = f"{mode} image with equal channels read as grey"
                else:
                    arr, kind = np.where(a.max(axis=2) > 0, 255, 0).astype(np.uint8), "colour"
                    note = f"coloured {mode} image: non-black pixels taken as foreground (255)"
            elif mode == "L":
                arr, note, kind = np.asarray(im).copy(), None, None
            else:
                arr, kind = np.asarray(im.convert("L")).copy(), "other"
                note = f"{mode} image converted to grey"
    except FileNotFoundError:
        raise InputError("mask not found", path=path, fix="check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(
            f"cannot read this mask ({_damage(path, e)})",
            path=path,
            fix="replace the damaged file with an 8-bit PNG",
        ) from None
    if kind in (None, "grey-rgb", "other"):  # grey values: a 0/1 mask is possible
        return _scaled_01(arr, mode) or MaskImage(arr, mode, note, kind)
    return MaskImage(arr, mode, note, kind)


def list_masks(folder: str | Path) -> list[Path]:
    """Mask files of a folder in natural order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("mask folder not found", path=folder, fix="check the path")
    return natural_sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MASK_EXTENSIONS)


#: the last 12 bytes of every complete PNG: the empty IEND chunk and its CRC
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _atomic_png(path: Path, array: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """Encode in memory, then write the bytes atomically. ``cv2.imwrite`` is not used: it returns
    True when libpng fails on a full disk, leaving a zero-byte or cut file under the real name."""
    write_bytes_atomic(path, _png_bytes(array, params))


def _png_bytes(array: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    import cv2

    ok, buffer = cv2.imencode(".png", array, list(params))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {array.shape} {array.dtype} array as PNG")
    return buffer.tobytes()


def is_complete_png(path: str | Path) -> bool:
    """True when ``path`` is a PNG file that ends with its IEND chunk (a cheap check that a mask
    was written whole; a cut or zero-byte file, e.g. left by an older vps on a full disk, is not)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(-len(PNG_END), 2)
            return head == b"\x89PNG\r\n\x1a\n" and f.read() == PNG_END
    except OSError:
        return False


def write_mask(path: str | Path, mask: np.ndarray, rows: tuple[int, int] | None = None) -> None:
    """Write a binary mask (bool or 0/nonzero, ``(H, W)``) as an 8-bit 0/255 PNG
    (:func:`~vpscli.io.mask_png.mask_png_bytes`: only its foreground rows cost anything to encode; ``rows``,
    their span when the caller knows it, spares a scan of the mask)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    write_bytes_atomic(Path(path), mask_png_bytes(mask if mask.dtype == bool else mask > 0, rows))


def probability_to_uint8(prob: np.ndarray) -> np.ndarray:
    """``floor(255·p)`` of a probability map in [0, 1], as uint8 (the benchmark format).

    >>> probability_to_uint8(np.array([0.0, 0.5, 0.999, 1.0, 1.7]))
    array([  0, 127, 254, 255, 255], dtype=uint8)
    """
    return np.floor(np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_levels(path: str | Path, levels: np.ndarray) -> None:
    """Write an ``(H, W)`` uint8 map (e.g. probabilities already quantised as ``floor(255·p)``)."""
    levels = np.asarray(levels)
    if levels.ndim != 2 or levels.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 map, got {levels.shape} {levels.dtype}")
    _atomic_png(Path(path), levels)


def write_probability(path: str | Path, prob: np.ndarray) -> None:
    """Write a probability map in [0, 1] as an 8-bit PNG of ``floor(255·p)``."""
    prob = np.asarray(prob)
    if prob.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {prob.shape}")
    _atomic_png(Path(path), probability_to_uint8(prob))
