"""Mask PNGs: what vps writes and what it accepts.

Written: 8-bit single-channel PNG, 0/255 for binary masks, ``floor(255·p)`` for
probability maps (the benchmark format). Files are written to a temporary name and
renamed, so an interrupted run never leaves a half-written PNG.

Read: 8-bit grayscale as is; and, each said in :attr:`MaskImage.note`, 1-bit PNGs
(→ 0/255), palette PNGs (index > 0 is foreground → 255), 16-bit (scaled to 8 bits),
0/1-valued masks (→ 0/255), RGB/RGBA (grey → that grey; coloured → non-black is
foreground).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpscli.errors import InputError
from vpscli.io.atomic import write_bytes_atomic
from vpscli.io.naming import natural_sorted

MASK_EXTENSIONS = frozenset({".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"})


@dataclass(frozen=True)
class MaskImage:
    """A mask read from disk: ``array`` is ``(H, W)`` uint8; ``note`` says what was converted."""

    array: np.ndarray
    source_mode: str
    note: str | None = None


def read_mask(path: str | Path) -> MaskImage:
    """Read a mask or probability map as ``(H, W)`` uint8 (see the module doc for conversions)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "1":
                return MaskImage(np.asarray(im, dtype=np.uint8) * 255, mode, "1-bit image expanded to 0/255")
            if mode == "P":
                idx = np.asarray(im)
                return MaskImage(np.where(idx > 0, 255, 0).astype(np.uint8), mode,
                                 "palette image: index > 0 taken as foreground (255)")
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im).astype(np.int64)
                if a.max(initial=0) <= 1:
                    return MaskImage((a * 255).astype(np.uint8), mode, "0/1 mask scaled to 0/255")
                return MaskImage(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8), mode,
                                 "16-bit image scaled to 8 bits")
            if mode in ("RGB", "RGBA", "LA"):
                a = np.asarray(im.convert("RGB"))
                if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]):
                    arr, note = a[..., 0].copy(), f"{mode} image with equal channels read as grey"
                else:
                    arr = np.where(a.max(axis=2) > 0, 255, 0).astype(np.uint8)
                    note = f"coloured {mode} image: non-black pixels taken as foreground (255)"
            elif mode == "L":
                arr, note = np.asarray(im).copy(), None
            else:
                arr, note = np.asarray(im.convert("L")).copy(), f"{mode} image converted to grey"
    except FileNotFoundError:
        raise InputError("mask not found", path=path, fix="check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"cannot read this mask ({e.__class__.__name__})", path=path,
                         fix="replace the damaged file with an 8-bit PNG") from None
    if note is None or "grey" in note:
        values = np.unique(arr)
        if len(values) <= 2 and values.max(initial=0) == 1:
            return MaskImage(arr * 255, mode, "0/1 mask scaled to 0/255")
    return MaskImage(arr, mode, note)


def list_masks(folder: str | Path) -> list[Path]:
    """Mask files of a folder in natural order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("mask folder not found", path=folder, fix="check the path")
    return natural_sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MASK_EXTENSIONS)


#: the last 12 bytes of every complete PNG: the empty IEND chunk and its CRC
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _atomic_png(path: Path, array: np.ndarray) -> None:
    """Encode in memory, then write the bytes atomically. ``cv2.imwrite`` is not used: it returns
    True when libpng fails on a full disk, leaving a zero-byte or cut file under the real name."""
    import cv2

    ok, buffer = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {array.shape} {array.dtype} array as PNG")
    write_bytes_atomic(path, buffer.tobytes())


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


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a binary mask (bool or 0/nonzero, ``(H, W)``) as an 8-bit 0/255 PNG."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    _atomic_png(Path(path), np.where(mask > 0, 255, 0).astype(np.uint8))


def probability_to_uint8(prob: np.ndarray) -> np.ndarray:
    """``floor(255·p)`` of a probability map in [0, 1], as uint8 (the benchmark format)."""
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
