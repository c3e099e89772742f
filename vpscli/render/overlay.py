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
from vpscli.render.palette import PALETTES, Palette
from vpscli.render.strokes import box_strokes, contour_strokes, line_width_for

STYLES = ("fill", "contour", "both", "box")


def blend_table(colour, alpha: float) -> np.ndarray:
    """``(1, 256, 3)`` uint8 for ``cv2.LUT``: ``round((1 - alpha) * v + alpha * colour)`` in float32 arithmetic
    for every level ``v`` of each channel.

    A blended pixel depends only on its own value, so a region is blended by reading this table: the
    formula's own numbers, a fraction of its work on a large region (the mask fill, the HUD's panels).
    """
    levels = np.arange(256, dtype=np.float32)[:, None]
    table = np.clip(np.rint((1.0 - alpha) * levels + alpha * np.asarray(colour, np.float32)), 0, 255)
    return table.astype(np.uint8).reshape(1, 256, 3)


def blend(image: np.ndarray, where: np.ndarray, colour, alpha: float) -> None:
    """In place: ``image[where] = round((1 - alpha) * image + alpha * colour)`` (float32 arithmetic,
    :func:`blend_table`)."""
    import cv2

    if not where.any():
        return
    blended = cv2.LUT(image, blend_table(colour, alpha))
    if image.flags.c_contiguous:
        cv2.copyTo(blended, np.ascontiguousarray(where).view(np.uint8), image)  # in place, by mask
    else:
        np.copyto(image, blended, where=where[..., None])


def _paint_strokes(
    image: np.ndarray, gt_line: np.ndarray | None, pred_line: np.ndarray, palette: Palette
) -> None:
    if gt_line is None:
        image[pred_line] = palette.pred_only
        return
    image[gt_line & ~pred_line] = palette.gt_only
    image[pred_line & ~gt_line] = palette.pred_only
    image[gt_line & pred_line] = palette.overlap


def draw_overlay(
    image: np.ndarray,
    pred: np.ndarray | None,
    gt: np.ndarray | None = None,
    *,
    style: str = "both",
    alpha: float = 0.4,
    palette: Palette = PALETTES["default"],
    line_width: int | None = None,
    box: tuple[int, int, int, int] | None = None,
    empty: bool = False,
) -> np.ndarray:
    """Overlay of ``pred`` and ``gt`` on ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB (not modified).
        pred: ``(H, W)`` bool prediction, or ``None`` for "no mask".
        gt: ``(H, W)`` bool ground truth, or ``None``.
        style: ``fill``, ``contour``, ``both`` or ``box``.
        alpha: fill opacity in [0, 1].
        line_width: contour/box width; default scales with resolution.
        box: ``(x, y, w, h)`` holding every pixel of ``pred`` and ``gt`` (the engine knows its masks'
            boxes): the drawing is confined to it and its margin of a line width, with the same result
            as drawing over the whole frame — at 1080p a polyp's box is a few percent of the frame.
        empty: ``pred`` and ``gt`` hold nothing (the frame is copied unchanged).

    Returns:
        a new ``(H, W, 3)`` uint8 RGB array.
    """
    if style not in STYLES:
        raise UsageError(f"--style must be one of {', '.join(STYLES)}, got {style!r}")
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha must be between 0 and 1, got {alpha}")
    out = image.copy()
    h, w = image.shape[:2]
    lw = line_width or line_width_for(h, w)
    if empty:
        return out
    if box is not None:
        # strokes are centred on the edge: a margin of a line width (and 2 px for the contour
        # tracer's border) keeps every drawn pixel inside the region, and the region's edge off the mask
        m = lw + 2
        x0, y0 = max(box[0] - m, 0), max(box[1] - m, 0)
        x1, y1 = min(box[0] + box[2] + m, w), min(box[1] + box[3] + m, h)
        region = (slice(y0, y1), slice(x0, x1))
        out[region] = _draw(
            out[region].copy(),
            None if pred is None else pred[region],
            None if gt is None else gt[region],
            style,
            alpha,
            palette,
            lw,
        )
        return out
    return _draw(out, pred, gt, style, alpha, palette, lw)


def _draw(
    out: np.ndarray,
    pred: np.ndarray | None,
    gt: np.ndarray | None,
    style: str,
    alpha: float,
    palette: Palette,
    lw: int,
) -> np.ndarray:
    """Fill and strokes of ``pred``/``gt`` on ``out`` (in place; returned)."""
    h, w = out.shape[:2]
    pred = np.zeros((h, w), bool) if pred is None else pred.astype(bool, copy=False)
    gt_b = None if gt is None else gt.astype(bool, copy=False)
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
