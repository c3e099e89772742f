"""Mean absolute error: ``mean(|p - G|)`` over all pixels of the normalised map ``p`` and boolean GT ``G``."""

from __future__ import annotations

import numpy as np

from vpscli.metrics.frame import PreparedFrame


def mae(frame: PreparedFrame) -> float:
    """MAE of one frame, from the per-level histograms (equal to the pixel loop up to float rounding)."""
    fg_error = np.abs(frame.levels - 1.0)  # |p - 1| exactly as the reference's float subtraction gives it
    total = float(np.dot(frame.fg_hist, fg_error)) + float(np.dot(frame.bg_hist, frame.levels))
    return total / frame.n_pixels
