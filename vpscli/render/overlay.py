"""Prediction vs ground truth drawn over one frame.

Regions: ground truth only, prediction only, overlap (both). ``fill`` blends the region
colour at ``alpha`` so mucosal texture and vessels stay visible; ``contour`` draws crisp
outlines (where a GT line and a prediction line coincide, the overlap colour); ``both``
does fill then contour; ``box`` draws each component's bounding box. Without ground truth
every predicted pixel is "prediction only".
"""
from __future__ import annotations

import numpy as np

from vpscli.errors import UsageError
from vpscli.render.palette import Palette, PALETTES
from vpscli.render.strokes import box_strokes, contour_strokes, line_width_for

STYLES = ("fill", "contour", "both", "box")


def blend(image: np.ndarray, where: np.ndarray, colour, alpha: float) -> None:
    """In place: ``image[where] = round((1 - alpha) * image + alpha * colour)``."""
    if not where.any():
        return
    px = image[where].astype(np.float32)
    image[where] = np.clip(np.rint((1.0 - alpha) * px + alpha * np.asarray(colour, np.float32)), 0, 255).astype(np.uint8)


def _paint_strokes(image: np.ndarray, gt_line: np.ndarray | None, pred_line: np.ndarray, palette: Palette) -> None:
    if gt_line is None:
        image[pred_line] = palette.pred_only
        return
    image[gt_line & ~pred_line] = palette.gt_only
    image[pred_line & ~gt_line] = palette.pred_only
    image[gt_line & pred_line] = palette.overlap


def draw_overlay(image: np.ndarray, pred: np.ndarray | None, gt: np.ndarray | None = None, *, style: str = "both",
                 alpha: float = 0.4, palette: Palette = PALETTES["default"], line_width: int | None = None
                 ) -> np.ndarray:
    """Overlay of ``pred`` and ``gt`` on ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (not modified).
        pred: ``(H, W)`` bool prediction, or ``None`` for "no mask".
        gt: ``(H, W)`` bool ground truth, or ``None``.
        style: ``fill``, ``contour``, ``both`` or ``box``.
        alpha: fill opacity in [0, 1].
        line_width: contour/box width; default scales with resolution.

    Returns:
        a new ``(H, W, 3)`` uint8 RGB array.
    """
    if style not in STYLES:
        raise UsageError(f"--style must be one of {', '.join(STYLES)}, got {style!r}")
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    out = image.copy()
    h, w = image.shape[:2]
    pred = np.zeros((h, w), bool) if pred is None else pred.astype(bool)
    gt_b = None if gt is None else gt.astype(bool)
    lw = line_width or line_width_for(h, w)
    if style in ("fill", "both"):
        if gt_b is None:
            blend(out, pred, palette.pred_only, alpha)
        else:
            blend(out, gt_b & ~pred, palette.gt_only, alpha)
            blend(out, pred & ~gt_b, palette.pred_only, alpha)
            blend(out, pred & gt_b, palette.overlap, alpha)
    if style in ("contour", "both"):
        pred_line = contour_strokes(pred, lw)
        gt_line = None if gt_b is None else contour_strokes(gt_b, lw, dashed=palette.gt_dashed)
        _paint_strokes(out, gt_line, pred_line, palette)
    if style == "box":
        pred_line = box_strokes(pred, lw)
        gt_line = None if gt_b is None else box_strokes(gt_b, lw, dashed=palette.gt_dashed)
        _paint_strokes(out, gt_line, pred_line, palette)
    return out
