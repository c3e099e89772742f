"""Dice, IoU, Sensitivity and Specificity sweeps (the reference's class ``Medical``).

256 points of convention L (``p >= linspace(1, 0, 256)[i]`` in float64). With TP, FP, FN, TN counted at
each point:

- **if TP = 0 all four are 0** — including Specificity, and on every point of an empty-GT frame;
- otherwise IoU = TP / (TP + FP + FN), Sen = TP / |G|, Spe = TN / (TN + FP), Dice = 2 TP / (|G| + |F|).

A full-foreground GT has TN + FP = 0, so Spe is 0/0 = **NaN** wherever TP > 0, as in the reference (the NaN
then spreads to the dataset meanSpe/maxSpe). An all-zero prediction is positive everywhere at t = 0.
"""

from __future__ import annotations

import numpy as np

from vpscli.metrics.frame import PreparedFrame
from vpscli.metrics.thresholds import linspace_counts

SWEEP_KEYS = ("Dice", "IoU", "Sen", "Spe")


def medical_curves(frame: PreparedFrame) -> dict[str, np.ndarray]:
    """``{"Dice", "IoU", "Sen", "Spe"}`` -> float64 (256,) each, strict -> lenient."""
    tp, positives = linspace_counts(frame)
    n_fg = frame.n_fg
    fn = n_fg - tp
    fp = positives - tp
    tn = (frame.n_pixels - positives) - fn
    hit = tp != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        curves = {
            "Dice": 2 * tp / (n_fg + positives),
            "IoU": tp / (fn + positives),
            "Sen": tp / n_fg if n_fg else np.zeros(tp.shape),
            "Spe": tn / (tn + fp),
        }
    return {key: np.where(hit, value, 0.0) for key, value in curves.items()}
