"""Stroke masks: where contour and box lines go, solid or dashed.

Strokes are returned as ``(H, W)`` bool masks rather than drawn in colour, so the overlay
can colour the pixels where a GT line and a prediction line coincide with the overlap colour.
"""

from __future__ import annotations

import numpy as np


def line_width_for(height: int, width: int) -> int:
    """Contour width scaled to resolution: 2 px up to ~720p, 3 px at 1080p, more above."""
    return max(2, round(min(height, width) / 360))


def _dash_on(points: np.ndarray, dash: int) -> np.ndarray:
    """For ``(N, 2)`` contour points, True where the point lies on a dash (arc length phase)."""
    step = np.linalg.norm(np.diff(points, axis=0, prepend=points[:1]).astype(np.float64), axis=1)
    return (np.cumsum(step) // dash).astype(np.int64) % 2 == 0


def _draw_polyline(canvas: np.ndarray, points: np.ndarray, closed: bool, width: int, dashed: bool) -> None:
    import cv2

    if not dashed:
        cv2.polylines(canvas, [points.reshape(-1, 1, 2).astype(np.int32)], closed, 255, width)
        return
    if closed:
        points = np.vstack([points, points[:1]])
    on = _dash_on(points, dash=max(4, 3 * width))
    # each run of consecutive "on" points is one dash
    start = None
    for i, flag in enumerate(list(on) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            seg = points[start:i]
            if len(seg) == 1:
                seg = np.vstack([seg, seg])
            cv2.polylines(canvas, [seg.reshape(-1, 1, 2).astype(np.int32)], False, 255, width)
            start = None


def contour_strokes(mask: np.ndarray, width: int, dashed: bool = False) -> np.ndarray:
    """Pixels of the outline of ``mask`` ``(H, W)`` bool → ``(H, W)`` bool, ``width`` px, centred on the edge."""
    import cv2

    canvas = np.zeros(mask.shape, np.uint8)
    if mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        for c in contours:
            _draw_polyline(canvas, c.reshape(-1, 2), True, width, dashed)
    return canvas > 0


def component_boxes(mask: np.ndarray, min_area: int = 1) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x0, y0, x1, y1)`` (inclusive) of the connected components of ``mask``."""
    import cv2

    if not mask.any():
        return []
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, w, h, area in stats[1:n]:
        if area >= min_area:
            boxes.append((int(x), int(y), int(x + w - 1), int(y + h - 1)))
    return boxes


def box_strokes(mask: np.ndarray, width: int, dashed: bool = False) -> np.ndarray:
    """Outline of each component's bounding box (the CADe-style green box) → ``(H, W)`` bool."""
    canvas = np.zeros(mask.shape, np.uint8)
    for x0, y0, x1, y1 in component_boxes(mask):
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        if dashed:
            # densify the box edges so dashes follow arc length
            dense = np.vstack(
                [
                    np.linspace(a, b, max(2, int(np.abs(b - a).max()) + 1), endpoint=False)
                    for a, b in zip(corners, np.roll(corners, -1, axis=0))
                ]
            )
            _draw_polyline(canvas, np.rint(dense).astype(np.int32), True, width, True)
        else:
            _draw_polyline(canvas, corners, True, width, False)
    return canvas > 0
