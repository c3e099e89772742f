"""Contact sheet: a grid of chosen frames (with their overlays) for a quick look at a video.

Layout: ``columns`` thumbnails per row (default: up to 4), ``GAP`` px dark gaps around and
between them, so a sheet of ``n`` thumbnails of ``tw x th`` is
``cols*tw + (cols+1)*GAP`` wide and ``rows*th + (rows+1)*GAP`` high.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vpscli.errors import UsageError
from vpscli.io.atomic import atomic_path

GAP = 4
BACKGROUND = (24, 24, 24)
PICKS = ("even", "confident")
#: thumbnails are at most this wide
THUMB_WIDTH = 320


def pick_frames(n_frames: int, count: int, how: str = "even", scores: np.ndarray | None = None) -> list[int]:
    """Indices of the frames to show, in video order.

    ``even``: ``count`` evenly spaced frames (first and last included). ``confident``: the
    ``count`` highest ``scores`` (``(n_frames,)``; confidence, else area), ties by position.
    """
    if how not in PICKS:
        raise UsageError(f"--sheet-pick must be one of {', '.join(PICKS)}, got {how!r}")
    if count < 1:
        raise UsageError(f"--sheet-frames must be at least 1, got {count}")
    count = min(count, n_frames)
    if count <= 0:
        return []
    if how == "even" or scores is None:
        return sorted({round(i * (n_frames - 1) / max(count - 1, 1)) for i in range(count)})
    order = np.lexsort((np.arange(n_frames), -np.asarray(scores, np.float64)))
    return sorted(int(i) for i in order[:count])


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """``(tw, th)`` of a ``width x height`` frame's thumbnail (aspect kept, at most ``THUMB_WIDTH`` wide)."""
    if width <= THUMB_WIDTH:
        return width, height
    return THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))


def thumbnail(image: np.ndarray) -> np.ndarray:
    import cv2

    tw, th = thumbnail_size(image.shape[1], image.shape[0])
    if (tw, th) == (image.shape[1], image.shape[0]):
        return image.copy()
    return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)


def label_thumbnail(thumb: np.ndarray, text: str) -> np.ndarray:
    """Copy of ``thumb`` with ``text`` (frame index and timecode) on a dark band at the bottom,
    so every tile says which frame it is even when the HUD is off or too small to read."""
    import cv2

    out = thumb.copy()
    scale = 0.35 if out.shape[1] < 200 else 0.45
    (tw, th), base = cv2.getTextSize(text, 0, scale, 1)
    band = th + base + 4
    y0 = max(0, out.shape[0] - band)
    out[y0:] = (out[y0:].astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(out, text, (2, out.shape[0] - base - 2), 0, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sheet_size(n: int, thumb: tuple[int, int], columns: int | None = None) -> tuple[int, int, int, int]:
    """``(columns, rows, width, height)`` of a sheet of ``n`` thumbnails of size ``thumb`` ``(tw, th)``."""
    cols = max(1, min(n, columns or 4))
    rows = max(1, math.ceil(n / cols))
    tw, th = thumb
    return cols, rows, cols * tw + (cols + 1) * GAP, rows * th + (rows + 1) * GAP


def build_sheet(thumbs: list[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Grid of equally sized ``(th, tw, 3)`` thumbnails → ``(H, W, 3)`` uint8 RGB."""
    th, tw = thumbs[0].shape[:2]
    cols, rows, width, height = sheet_size(len(thumbs), (tw, th), columns)
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = BACKGROUND
    for k, t in enumerate(thumbs):
        r, c = divmod(k, cols)
        y, x = GAP + r * (th + GAP), GAP + c * (tw + GAP)
        sheet[y : y + th, x : x + tw] = t
    return sheet


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write ``(H, W, 3)`` RGB as PNG, atomically."""
    import cv2

    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"OpenCV could not encode {Path(path).name}")
