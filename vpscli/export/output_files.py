"""Writing export files: atomic (temporary name, then rename) and with one-line errors."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vpscli.errors import OutputError


def make_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) or raise :class:`OutputError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create folder ({e.strerror})", path=folder,
                          fix="choose another -o or check permissions") from None
    return folder


def palette_png_bytes(indices: np.ndarray, palette: list[tuple[int, int, int]]) -> bytes:
    """``(H, W)`` uint8 index image → P-mode PNG bytes with ``palette`` (index → RGB)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), mode="P")
    flat = [v for rgb in palette for v in rgb]
    image.putpalette(flat + [0] * (768 - len(flat)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The PASCAL VOC / DAVIS colour map: 0 black, 1 (128, 0, 0), 2 (0, 128, 0), 3 (128, 128, 0)…"""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return colours
