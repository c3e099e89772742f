"""The run log: ``log.csv`` (one row per logged training interval or validation) and
``curves.png`` (loss and validation curves, drawn with OpenCV)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

__all__ = ["LOG_COLUMNS", "TrainLog", "plot_curves"]

#: Columns of ``log.csv``. ``kind`` is ``train`` (means over the steps since the last train row)
#: or ``val`` (validation after ``step`` steps; ``val_*`` filled, train columns empty). ``epoch`` is
#: fractional (steps / steps per epoch); ``elapsed_s`` counts from the start of this invocation
#: (it restarts at 0 after ``--resume``); ``samples_per_s`` covers data loading and the step.
LOG_COLUMNS = (
    "kind",
    "step",
    "epoch",
    "lr",
    "loss",
    "bce",
    "dice",
    "grad_norm",
    "samples_per_s",
    "elapsed_s",
    "val_maxDice",
    "val_meanDice",
    "val_Smeasure",
    "val_MAE",
    "val_maxIoU",
    "val_neg_clean",
)


class TrainLog:
    """Appends rows to ``log.csv``; on resume, rows after the snapshot's step are dropped
    (they belong to steps that will be run again)."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def add(self, **values) -> None:
        """Append one row (unknown keys are an error; missing ones are left empty)."""
        row = {k: "" for k in LOG_COLUMNS}
        for k, v in values.items():
            if k not in row:
                raise KeyError(f"not a log column: {k}")
            row[k] = f"{v:.6g}" if isinstance(v, float) else str(v)
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_COLUMNS).writerow(row)


_COLOURS = [(200, 80, 20), (30, 140, 30), (20, 20, 200), (150, 30, 150), (0, 150, 200), (120, 120, 0)]


def _panel(
    canvas: np.ndarray, x0: int, title: str, series: dict[str, tuple[list[float], list[float]]]
) -> None:
    """Draw line series ``name → (steps, values)`` in the panel at column ``x0``."""
    h = canvas.shape[0]
    w = canvas.shape[1] // 2
    left, right, top, bottom = x0 + 60, x0 + w - 20, 58, h - 40
    cv2.putText(canvas, title, (x0 + 60, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
    points = [(s, v) for xs, ys in series.values() for s, v in zip(xs, ys) if np.isfinite(v)]
    if not points:
        cv2.putText(
            canvas, "no data yet", (left + 10, top + 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (90, 90, 90), 1
        )
        return
    s_lo, s_hi = min(p[0] for p in points), max(p[0] for p in points)
    v_lo, v_hi = min(p[1] for p in points), max(p[1] for p in points)
    s_hi, v_hi = (s_hi if s_hi > s_lo else s_lo + 1), (v_hi if v_hi > v_lo else v_lo + 1e-6)
    for frac in (0.0, 0.5, 1.0):
        y = int(bottom - frac * (bottom - top))
        cv2.putText(
            canvas,
            f"{v_lo + frac * (v_hi - v_lo):.3g}",
            (x0 + 5, y + 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (60, 60, 60),
            1,
            cv2.LINE_AA,
        )
        x = int(left + frac * (right - left))
        cv2.putText(
            canvas,
            f"{s_lo + frac * (s_hi - s_lo):.0f}",
            (x - 10, bottom + 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (60, 60, 60),
            1,
            cv2.LINE_AA,
        )
    cv2.putText(
        canvas, "step", (right - 40, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1, cv2.LINE_AA
    )
    for n, (name, (xs, ys)) in enumerate(series.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        pts = [
            (
                int(left + (s - s_lo) / (s_hi - s_lo) * (right - left)),
                int(bottom - (v - v_lo) / (v_hi - v_lo) * (bottom - top)),
            )
            for s, v in zip(xs, ys)
            if np.isfinite(v)
        ]
        if len(pts) > 1:
            cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts if len(pts) < 40 else []:
            cv2.circle(canvas, p, 3, colour, -1, cv2.LINE_AA)
        # Legend in one row between the title and the plot, so it never hides a curve.
        cv2.putText(
            canvas, name, (left + 95 * n, top - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
        )


def plot_curves(rows: list[dict[str, str]], path: str | Path, size: tuple[int, int] = (420, 1100)) -> Path:
    """Write a PNG: left, training loss (and its BCE/Dice parts) per step; right, validation metrics."""

    def series(kind: str, key: str) -> tuple[list[float], list[float]]:
        sel = [r for r in rows if r["kind"] == kind and r.get(key, "") != ""]
        return [float(r["step"]) for r in sel], [float(r[key]) for r in sel]

    canvas = np.full((size[0], size[1], 3), 255, np.uint8)
    _panel(
        canvas, 0, "training loss (5 BCE + 2 Dice)", {k: series("train", k) for k in ("loss", "bce", "dice")}
    )
    val = {k[4:]: series("val", k) for k in LOG_COLUMNS if k.startswith("val_")}
    _panel(canvas, size[1] // 2, "validation", {k: v for k, v in val.items() if v[0]})
    path = Path(path)
    cv2.imwrite(str(path), canvas)
    return path
