"""``--plot``: threshold curves and a PR curve per split, one line per method, drawn with OpenCV.

Each split is one row of panels: Dice, IoU, Sen, Spe against the convention-L threshold
(``linspace(1, 0, 256)``), Em and Fm against the convention-H threshold ((255 - i) / 255), and
precision against recall (convention H). The curves are the dataset-mean curves the report's max/mean
values come from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vpscli.errors import OutputError
from vpscli.metrics.runner import EvaluationResult
from vpscli.metrics.thresholds import LINSPACE_THRESHOLDS

#: Families whose curves the plot needs.
PLOT_FAMILIES = ("emeasure", "fmeasure", "medical")
PANELS = ("Dice", "IoU", "Sen", "Spe", "Em", "Fm", "PR")
PANEL_W, PANEL_H = 300, 260
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 44, 12, 30, 34
TITLE_H = 34
#: Line colours (BGR), cycled over methods.
COLOURS = (
    (200, 90, 30),
    (40, 40, 220),
    (60, 160, 60),
    (0, 140, 255),
    (160, 60, 160),
    (120, 120, 0),
    (80, 80, 80),
)
_HIST_THRESHOLDS = (255 - np.arange(256)) / 255


def _panel(
    title: str, lines: list[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]], xlabel: str
) -> np.ndarray:
    import cv2

    img = np.full((PANEL_H, PANEL_W, 3), 255, np.uint8)
    x0, y0 = MARGIN_L, MARGIN_T
    x1, y1 = PANEL_W - MARGIN_R, PANEL_H - MARGIN_B
    font = cv2.FONT_HERSHEY_SIMPLEX
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):  # grid and ticks
        gx = int(round(x0 + v * (x1 - x0)))
        gy = int(round(y1 - v * (y1 - y0)))
        cv2.line(img, (gx, y0), (gx, y1), (230, 230, 230), 1)
        cv2.line(img, (x0, gy), (x1, gy), (230, 230, 230), 1)
        if v in (0.0, 0.5, 1.0):
            cv2.putText(img, f"{v:g}", (gx - 8, y1 + 16), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
            cv2.putText(img, f"{v:g}", (x0 - 30, gy + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    cv2.putText(img, title, (x0, y0 - 10), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, ((x0 + x1) // 2 - 30, PANEL_H - 6), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    for xs, ys, colour in lines:
        keep = np.isfinite(xs) & np.isfinite(ys)
        if keep.sum() < 2:
            continue
        px = x0 + np.clip(xs[keep], 0, 1) * (x1 - x0)
        py = y1 - np.clip(ys[keep], 0, 1) * (y1 - y0)
        points = np.round(np.stack([px, py], axis=1) * 16).astype(np.int32)  # 4 fractional bits
        cv2.polylines(img, [points.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA, shift=4)
    return img


def render(result: EvaluationResult) -> np.ndarray:
    """The figure as a BGR uint8 image."""
    import cv2

    methods = list(result.plan.methods)
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(methods)}
    rows = []
    for split in result.plan.splits:
        panels = []
        for name in PANELS:
            lines = []
            for method in methods:
                dataset = result.datasets.get((split.name, method))
                if dataset is None or not dataset.curves:
                    continue
                c = dataset.curves
                if name == "PR":
                    lines.append((c["Recall"], c["Precision"], colour[method]))
                elif name in ("Em", "Fm"):
                    lines.append((_HIST_THRESHOLDS, c[name], colour[method]))
                else:
                    lines.append((LINSPACE_THRESHOLDS, c[name], colour[method]))
            xlabel = "recall" if name == "PR" else "threshold"
            panels.append(_panel("precision-recall" if name == "PR" else name, lines, xlabel))
        header = np.full((TITLE_H, PANEL_W * len(PANELS), 3), 255, np.uint8)
        label = "split: " + split.name
        cv2.putText(header, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.65, (0, 0, 0), 1, cv2.LINE_AA)
        x = 10 + cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.65, 1)[0][0] + 30
        for method in methods:  # legend
            cv2.line(header, (x, 18), (x + 24, 18), colour[method], 3, cv2.LINE_AA)
            text = "predictions" if method == "." else method
            cv2.putText(header, text, (x + 30, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            x += 30 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] + 24
        rows.append(np.vstack([header, np.hstack(panels)]))
    return np.vstack(rows)


def write_plot(result: EvaluationResult, path: str | Path) -> None:
    """Render and write the figure (PNG)."""
    import cv2

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), render(result))
    except (OSError, cv2.error) as e:
        raise OutputError(f"cannot write the plot ({e})", path=path) from None
    if not ok:
        raise OutputError("cannot write the plot", path=path)
