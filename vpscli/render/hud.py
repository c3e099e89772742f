"""Burned-in information (HUD) and the colour legend, drawn with OpenCV's Hershey fonts.

HUD, top-left on a dark translucent panel: frame index, timecode ``HH:MM:SS.mmm`` from the
source timestamp (true PTS, so correct for variable frame rate), model and threshold when
known, polyp present/absent badge with per-frame area and confidence. A "research use"
banner sits at the top right. The legend sits at the bottom left.
:func:`draw_hud` returns where each item went, so tests can look at the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpscli.render.palette import Palette

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX; a literal keeps cv2 out of import time
BANNER = "research use - not for diagnosis"
Rect = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class FrameInfo:
    """What the HUD shows for one frame.

    Attributes:
        index: 0-based frame index; total: frames in the source.
        timestamp: presentation time in seconds.
        has_mask: False when the frame has no mask ("no mask" badge).
        area_fraction: predicted polyp area / frame area, or ``None``.
        confidence: max probability in the frame, or ``None`` when unknown (binary masks).
        model, threshold: from ``run.json`` when known.
    """

    index: int
    total: int
    timestamp: float
    has_mask: bool = True
    area_fraction: float | None = None
    confidence: float | None = None
    model: str | None = None
    threshold: float | None = None


def format_timecode(seconds: float) -> str:
    """``83.4567`` → ``00:01:23.457``."""
    ms = int(round(max(seconds, 0.0) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def text_scale(height: int, width: int) -> tuple[float, int]:
    """Font scale and thickness for a frame size (readable from 240p to 4K)."""
    scale = max(0.35, min(height, width) / 700)
    return scale, 1 if scale < 0.9 else 2


def _panel(image: np.ndarray, rect: Rect, alpha: float = 0.6) -> None:
    """In place: the part of ``rect`` inside ``image`` blended toward black at ``alpha`` (the overlay's fill
    rule, :func:`~vpscli.render.overlay.blend_table`)."""
    import cv2

    from vpscli.render.overlay import blend_table

    x, y, w, h = rect
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 > x0 and y1 > y0:
        image[y0:y1, x0:x1] = cv2.LUT(image[y0:y1, x0:x1], blend_table((0, 0, 0), alpha))


def _text_lines(
    image: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]], x: int, y: int, scale: float, thick: int
) -> list[Rect]:
    """Draw lines top-down from ``(x, y)`` on one dark panel; returns each line's rect."""
    import cv2

    sizes = [cv2.getTextSize(t, FONT, scale, thick) for t, _ in lines]
    pad = max(2, int(4 * scale))
    line_h = max(s[0][1] + s[1] for s in sizes) + pad
    width = max(s[0][0] for s in sizes) + 2 * pad
    _panel(image, (x, y, width, line_h * len(lines) + pad))
    rects = []
    for i, ((text, colour), ((tw, th), base)) in enumerate(zip(lines, sizes)):
        top = y + pad + i * line_h
        cv2.putText(image, text, (x + pad, top + th), FONT, scale, colour, thick, cv2.LINE_AA)
        rects.append((x + pad, top, tw, th + base))
    return rects


def draw_hud(
    image: np.ndarray, info: FrameInfo, *, timecode: bool = True, details: bool = True
) -> dict[str, Rect]:
    """Draw the HUD in place on ``image`` ``(H, W, 3)`` uint8 RGB.

    ``timecode`` toggles the timecode line; ``details`` the frame index, model, area,
    confidence, badge and banner. Returns ``{"frame"|"timecode"|"model"|"status"|"banner": rect}``.
    """
    import cv2

    h, w = image.shape[:2]
    scale, thick = text_scale(h, w)
    white, grey = (255, 255, 255), (200, 200, 200)
    lines, keys = [], []
    if details:
        lines.append((f"frame {info.index}/{max(info.total - 1, 0)}", white))
        keys.append("frame")
    if timecode:
        lines.append((format_timecode(info.timestamp), white))
        keys.append("timecode")
    if details:
        if info.model or info.threshold is not None:
            parts = [info.model or "model ?"]
            if info.threshold is not None:
                parts.append(f"thr {info.threshold:g}")
            lines.append((" ".join(parts), grey))
            keys.append("model")
        if not info.has_mask:
            lines.append(("no mask", (160, 160, 160)))
        else:
            present = bool(info.area_fraction)
            status = "POLYP" if present else "no polyp"
            if info.area_fraction is not None:
                status += f"  area {100 * info.area_fraction:.1f}%"
            if info.confidence is not None:
                status += f"  conf {info.confidence:.2f}"
            lines.append((status, (255, 220, 0) if present else grey))
        keys.append("status")
    regions: dict[str, Rect] = {}
    if lines:
        margin = max(2, w // 100)
        regions.update(zip(keys, _text_lines(image, lines, margin, margin, scale, thick)))
    if details:
        bscale = scale * 0.8
        (tw, th), base = cv2.getTextSize(BANNER, FONT, bscale, 1)
        x, y = w - tw - 4, 2
        _panel(image, (x - 2, y, tw + 6, th + base + 4))
        cv2.putText(image, BANNER, (x, y + th + 2), FONT, bscale, (255, 255, 255), 1, cv2.LINE_AA)
        regions["banner"] = (x, y, tw, th + base + 4)
    return regions


def draw_legend(image: np.ndarray, palette: Palette, with_gt: bool, mask_label: str = "prediction") -> Rect:
    """Colour swatches with labels at the bottom left of ``image`` (in place); returns the panel rect."""
    import cv2

    h, w = image.shape[:2]
    scale, thick = text_scale(h, w)
    scale *= 0.85
    entries = palette.legend_entries(with_gt, mask_label)
    sizes = [cv2.getTextSize(label, FONT, scale, thick) for label, _, _ in entries]
    pad = max(2, int(4 * scale))
    row = max(s[0][1] + s[1] for s in sizes) + pad
    sw = 2 * row
    width = sw + 3 * pad + max(s[0][0] for s in sizes)
    height = row * len(entries) + pad
    x, y = max(2, w // 100), h - height - max(2, w // 100)
    _panel(image, (x, y, width, height))
    for i, ((label, colour, dashed), ((_, th), _)) in enumerate(zip(entries, sizes)):
        top = y + pad + i * row
        mid = top + th // 2
        if dashed:
            for sx in range(x + pad, x + pad + sw, 6):
                cv2.line(image, (sx, mid), (min(sx + 2, x + pad + sw), mid), colour, max(2, thick + 1))
        else:
            cv2.line(image, (x + pad, mid), (x + pad + sw, mid), colour, max(2, thick + 1))
        cv2.putText(
            image, label, (x + 2 * pad + sw, top + th), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA
        )
    return (x, y, width, height)
