"""Structure measure (S-measure, Fan et al. ICCV 2017), alpha = 0.5, with the reference toolbox's edge rules.

With ``y = mean(G)``: an empty GT gives ``1 - mean(p)``, a full GT ``mean(p)``; otherwise
``S = max(0, 0.5 * S_object + 0.5 * S_region)`` with Python's built-in ``max``, so a NaN becomes 0.

- **Object term**: ``O(v) = 2 mean(v) / (mean(v)^2 + 1 + std(v) + eps)`` with the *sample* standard
  deviation (ddof = 1); ``S_object = y * O(p on G) + (1 - y) * O(1 - p off G)``.
- **Region term**: the GT centroid (mean row/column of the foreground, 0-based, rounded half-to-even,
  plus 1) splits the frame into four quadrants LT, RT, LB, RB weighted by area; each quadrant's SSIM-like
  score uses n - 1 divisors: ``Q = 4 x y s_xy / ((x^2 + y^2)(s_x + s_y) + eps)``, 1 if numerator and
  denominator are both 0, 0 if only the numerator is.

Toolbox edge cases, reproduced: a 1-pixel foreground (or background) has a NaN ddof-1 std, a 1-pixel
quadrant a 0/0 variance, an empty quadrant (centroid in the last row or column) a NaN mean — each makes
S = 0. Means and (co)variances come from per-level histograms of each quadrant (no float image); the one
place where the reference's exact float summation changes the result discontinuously (a constant
prediction over a constant-GT quadrant, where ``s_x`` is 0 or a rounding residue) is replayed exactly.
"""

from __future__ import annotations

import math

import numpy as np

from vpscli.metrics.frame import PreparedFrame, level_histograms

EPS = np.spacing(1)
ALPHA = 0.5


def smeasure(frame: PreparedFrame) -> float:
    """S-measure of one frame."""
    n, n_fg = frame.n_pixels, frame.n_fg
    if n_fg == 0:
        return float(1 - np.dot(frame.hist, frame.levels) / n)
    if n_fg == n:
        return float(np.dot(frame.hist, frame.levels) / n)
    score = ALPHA * _object_score(frame) + (1 - ALPHA) * _region_score(frame)
    return float(max(0, score))  # built-in max: max(0, nan) is 0, as in the reference


def _mean_std(counts: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Mean and ddof-1 standard deviation of a multiset given as (count per value, value); NaN like numpy."""
    n = int(counts.sum())
    if n == 0:
        return math.nan, math.nan
    mean = float(np.dot(counts, values)) / n
    if n == 1:
        return mean, math.nan
    return mean, math.sqrt(float(np.dot(counts, (values - mean) ** 2)) / (n - 1))


def _object_similarity(counts: np.ndarray, values: np.ndarray) -> float:
    mean, std = _mean_std(counts, values)
    return 2 * mean / (mean**2 + 1 + std + EPS)


def _object_score(frame: PreparedFrame) -> float:
    y = frame.n_fg / frame.n_pixels
    fg = _object_similarity(frame.fg_hist, frame.levels)
    bg = _object_similarity(frame.bg_hist, 1 - frame.levels)
    return y * fg + (1 - y) * bg


def centroid(gt: np.ndarray) -> tuple[int, int]:
    """(X, Y): 1-based column and row of the rounded (half-to-even) foreground centroid of a non-empty GT."""
    rows = gt.sum(axis=1, dtype=np.int64)
    cols = gt.sum(axis=0, dtype=np.int64)
    n = int(rows.sum())
    y = int(np.dot(np.arange(rows.size, dtype=np.int64), rows)) / n
    x = int(np.dot(np.arange(cols.size, dtype=np.int64), cols)) / n
    return int(np.round(x)) + 1, int(np.round(y)) + 1


def _region_score(frame: PreparedFrame) -> float:
    h, w = frame.shape
    x, y = centroid(frame.gt)
    area = h * w
    weights = (x * y / area, y * (w - x) / area, (h - y) * x / area)
    weights = weights + (1 - weights[0] - weights[1] - weights[2],)
    quadrants = ((0, y, 0, x), (0, y, x, w), (y, h, 0, x), (y, h, x, w))
    # Per-quadrant (background, foreground) level histograms; the last is the total minus the others.
    hists = [
        level_histograms(frame.pred[r0:r1, c0:c1], frame.gt[r0:r1, c0:c1]) for r0, r1, c0, c1 in quadrants[:3]
    ]
    hists.append((
        frame.bg_hist - hists[0][0] - hists[1][0] - hists[2][0],
        frame.fg_hist - hists[0][1] - hists[1][1] - hists[2][1],
    ))  # fmt: skip
    score = 0.0
    for weight, bounds, (bg, fg) in zip(weights, quadrants, hists):
        score = score + weight * _quadrant_similarity(frame, bounds, bg, fg)
    return score


def _quadrant_similarity(
    frame: PreparedFrame, bounds: tuple[int, int, int, int], bg: np.ndarray, fg: np.ndarray
) -> float:
    """The reference's SSIM-like score of one quadrant (rows r0:r1, columns c0:c1) from its histograms."""
    r0, r1, c0, c1 = bounds
    n = (r1 - r0) * (c1 - c0)
    if n <= 1:  # empty: NaN mean; one pixel: 0/0 variance — both NaN in the reference
        return math.nan
    counts = bg + fg
    n_fg = int(fg.sum())
    levels = frame.levels
    y = n_fg / n
    present = np.flatnonzero(counts)
    if present.size == 1 and n_fg in (0, n):
        # Constant prediction over a constant GT: the score is 1 if the reference's float mean of the
        # quadrant equals the value exactly (s_x = 0), else 0 (s_x is a rounding residue > 0).
        value = float(levels[present[0]])
        return 1.0 if _reference_mean_is_exact(value, frame.shape, r0, r1, c0, c1) else 0.0
    x = float(np.dot(counts, levels)) / n
    dev = levels - x
    sigma_x = float(np.dot(counts, dev**2)) / (n - 1)
    sigma_y = (n_fg * (1 - y) ** 2 + (n - n_fg) * y**2) / (n - 1)
    sigma_xy = (float(np.dot(fg, dev)) * (1 - y) + float(np.dot(bg, dev)) * (0 - y)) / (n - 1)
    alpha = 4 * x * y * sigma_xy
    beta = (x**2 + y**2) * (sigma_x + sigma_y)
    if alpha != 0:
        return alpha / (beta + EPS)
    return 1.0 if beta == 0 else 0.0


def _reference_mean_is_exact(
    value: float, shape: tuple[int, int], r0: int, r1: int, c0: int, c1: int
) -> bool:
    """Whether ``numpy.mean`` of the quadrant slice of a map holding ``value`` returns ``value`` exactly.

    numpy's summation order depends on the slice's memory layout, so the slice is rebuilt with the same
    strides as the reference's view of the full (H, W) map.
    """
    if value in (0.0, 1.0):  # sums of 0s and 1s are exact
        return True
    rows = np.full((r1 - r0, shape[1]), value)
    return bool(rows[:, c0:c1].mean() == value)
