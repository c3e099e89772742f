"""The timeline strip under the video: where a polyp was detected (and where the GT has one).

One row per track (prediction, and ground truth with ``--gt``) over the whole video, one
pixel column per slice of frames; a column is lit when any frame of its slice is positive,
so a one-frame detection in a two-hour video still shows. Frames without a mask are grey.
The current position is a white marker. The strip is built once; each frame copies it and
adds the marker.
"""

from __future__ import annotations

import numpy as np

from vpscli.render.palette import Palette

BACKGROUND = (40, 40, 40)
MISSING = (110, 110, 110)
MARKER = (255, 255, 255)


def strip_height(frame_height: int, tracks: int) -> int:
    """Even strip height: about 1/24 of the frame per track, at least 8 px per track."""
    h = max(8 * tracks, round(frame_height / 24) * tracks) + 2
    return h + h % 2


def _columns(values: np.ndarray, width: int) -> np.ndarray:
    """``(N,)`` bool per frame → ``(width,)`` bool: any frame of each column's slice."""
    n = len(values)
    if n == 0:
        return np.zeros(width, bool)
    starts = (np.arange(width) * n) // width
    ends = np.maximum(starts + 1, (np.arange(1, width + 1) * n) // width)
    csum = np.concatenate([[0], np.cumsum(values.astype(np.int64))])
    return csum[ends] - csum[starts] > 0


class Timeline:
    """Presence strip for a video of ``len(pred)`` frames.

    Args:
        width: strip width in pixels (the output frame width).
        height: strip height (see :func:`strip_height`).
        pred: ``(N,)`` bool, prediction positive per frame.
        gt: ``(N,)`` bool ground truth positive per frame, or ``None``.
        missing: ``(N,)`` bool, frames without a prediction mask, or ``None``.
    """

    def __init__(
        self,
        width: int,
        height: int,
        pred: np.ndarray,
        palette: Palette,
        gt: np.ndarray | None = None,
        missing: np.ndarray | None = None,
    ):
        self.n = len(pred)
        self.width, self.height = width, height
        strip = np.empty((height, width, 3), np.uint8)
        strip[:] = BACKGROUND
        tracks = [(np.asarray(pred, bool), palette.pred_only, missing)]
        if gt is not None:
            tracks.append((np.asarray(gt, bool), palette.gt_only, None))
        row_h = (height - 2) // len(tracks)
        self.rows: list[tuple[int, int]] = []
        for k, (values, colour, miss) in enumerate(tracks):
            y0 = 1 + k * row_h
            y1 = y0 + row_h - 1  # one dark pixel between rows
            if miss is not None and miss.any():
                strip[y0:y1, _columns(miss, width)] = MISSING
            strip[y0:y1, _columns(values, width)] = colour
            self.rows.append((y0, y1))
        self.strip = strip

    def marker_x(self, index: int) -> int:
        """Column of frame ``index`` (centre of its slice)."""
        return min(self.width - 1, int((index + 0.5) * self.width / max(self.n, 1)))

    def render(self, index: int) -> np.ndarray:
        """``(height, width, 3)`` strip with the marker at frame ``index``."""
        out = self.strip.copy()
        x = self.marker_x(index)
        out[:, max(0, x - 1) : x + 1] = MARKER
        return out
