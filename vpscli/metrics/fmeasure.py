"""F-measure with beta^2 = 0.3 (the reference names it ``beta``), precision and recall.

For a binary map F: ``precision = TP / |F|`` (|F| = 0 counts as 1), ``recall = TP / max(|G|, 1)``,
``F = (1 + b2) * precision * recall / (b2 * precision + recall)`` and F = 0 where the numerator is 0.

- curve (meanFm, maxFm) and the PR curve: 256 points of convention H;
- adpFm: the adaptive threshold; 0 when there is no true positive.
"""

from __future__ import annotations

import numpy as np

from vpscli.metrics.frame import PreparedFrame
from vpscli.metrics.thresholds import adaptive_counts, histogram_counts

BETA2 = 0.3


def fmeasure_curves(frame: PreparedFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F), each float64 (256,), at each convention-H threshold, strict -> lenient."""
    tp, positives = histogram_counts(frame)
    positives = np.where(positives == 0, 1, positives)
    precision = tp / positives
    recall = tp / max(frame.n_fg, 1)
    numerator = (1 + BETA2) * precision * recall
    denominator = np.where(numerator == 0, 1, BETA2 * precision + recall)
    return precision, recall, numerator / denominator


def adaptive_fmeasure(frame: PreparedFrame) -> float:
    """adpFm: F-measure of ``p >= min(2 * mean(p), 1)``."""
    tp, positives = adaptive_counts(frame)
    if tp == 0:
        return 0.0
    precision = tp / positives
    recall = tp / frame.n_fg
    return float((1 + BETA2) * precision * recall / (BETA2 * precision + recall))
