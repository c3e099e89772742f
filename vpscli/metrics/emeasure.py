"""Enhanced-alignment measure (E-measure, Fan et al. IJCAI 2018) of binary maps, from four counts.

For a binary map F and the boolean GT G of N pixels: with a = F - mean(F) and b = G - mean(G) per pixel,
``xi = 2ab / (a^2 + b^2 + eps)``, ``phi = (xi + 1)^2 / 4`` and ``E = sum(phi) / (N - 1 + eps)``.
Both maps being binary, the sum has four kinds of terms (TP, FP, FN, TN pixels), which is how the
reference evaluates it; an empty GT gives ``#(F = 0) / (N - 1 + eps)``, a full GT ``#(F = 1) / (...)``.
E can exceed 1 slightly (a perfect map on an empty GT gives N / (N - 1)).

- curve (meanEm, maxEm): 256 points of convention H (:mod:`vpscli.metrics.thresholds`);
- adpEm: the adaptive threshold.

The arithmetic follows the reference's order of operations so that values agree to the last bit.
"""

from __future__ import annotations

import numpy as np

from vpscli.metrics.frame import PreparedFrame
from vpscli.metrics.thresholds import adaptive_counts, histogram_counts

EPS = np.spacing(1)


def _emeasure(tp, positives, n_fg: int, n: int):
    """E-measure from counts; ``tp`` and ``positives`` are ints or int64 arrays (one entry per threshold)."""
    negatives = n - positives
    if n_fg == 0:
        enhanced_sum = negatives
    elif n_fg == n:
        enhanced_sum = positives
    else:
        fp = positives - tp
        fn = n_fg - tp
        tn = negatives - fn
        mean_pred = positives / n
        mean_gt = n_fg / n
        pred_fg, pred_bg = 1 - mean_pred, 0 - mean_pred
        gt_fg, gt_bg = 1 - mean_gt, 0 - mean_gt
        enhanced_sum = 0
        for count, a, b in (
            (tp, pred_fg, gt_fg),
            (fp, pred_fg, gt_bg),
            (fn, pred_bg, gt_fg),
            (tn, pred_bg, gt_bg),
        ):
            align = 2 * (a * b) / (a**2 + b**2 + EPS)
            enhanced_sum = enhanced_sum + (align + 1) ** 2 / 4 * count
    return enhanced_sum / (n - 1 + EPS)


def emeasure_curve(frame: PreparedFrame) -> np.ndarray:
    """float64 (256,): E-measure at each convention-H threshold, strict -> lenient."""
    tp, positives = histogram_counts(frame)
    curve = _emeasure(tp, positives, frame.n_fg, frame.n_pixels)
    return np.asarray(curve, dtype=np.float64)


def adaptive_emeasure(frame: PreparedFrame) -> float:
    """adpEm: E-measure of ``p >= min(2 * mean(p), 1)``."""
    tp, positives = adaptive_counts(frame)
    return float(_emeasure(tp, positives, frame.n_fg, frame.n_pixels))
