"""The three ways the reference binarises a normalised map ``p``; all sweeps have 256 points ordered from
the strictest (index 0) to the most lenient (index 255, every pixel positive).

- **Histogram convention (H)** — E-measure and F-measure curves. ``q = (p * 255).astype(uint8)``
  (truncation); point ``i`` marks pixels with ``q >= 255 - i``.
- **Linspace convention (L)** — Dice/IoU/Sensitivity/Specificity (toolbox class ``Medical``).
  ``t = numpy.linspace(1, 0, 256)``; point ``i`` marks pixels with ``p >= t[i]``, compared in float64.
  H and L differ at ties: for 66 of the 256 levels ``k/255 < t[255 - k]``, so such a pixel turns
  positive one point later under L.
- **Adaptive threshold** — adpEm and adpFm: ``T = min(2 * mean(p), 1)``, positive where ``p >= T``.

Every count here is obtained from the per-level histograms of :class:`~vpscli.metrics.frame.PreparedFrame`
by mapping each of the 256 levels to the first sweep point at which it is positive — the same float
comparisons the reference makes per pixel, done once per level.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from vpscli.metrics.frame import PreparedFrame

N_THRESHOLDS = 256

#: Convention L thresholds, strict -> lenient (``t[0] = 1``, ``t[255] = 0``).
LINSPACE_THRESHOLDS: np.ndarray = np.linspace(1, 0, N_THRESHOLDS)

#: The relative gap under which a level is "on" the adaptive threshold and the exact mean is needed.
_ADAPTIVE_TIE_GAP = 1e-11


def _cumulative(first_point: np.ndarray, per_level: np.ndarray) -> np.ndarray:
    """int64 (256,): at each sweep point, the number of pixels already positive.

    ``first_point[u]`` is the sweep index from which level ``u`` is positive; ``per_level[u]`` its count.
    """
    counts = np.bincount(first_point, weights=per_level, minlength=N_THRESHOLDS + 1)[:N_THRESHOLDS]
    return np.cumsum(counts).astype(np.int64)  # float sums of integer counts < 2**53 are exact


@lru_cache(maxsize=4096)
def _first_points(levels_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(H, L) first positive sweep index of every level, for a ``levels`` table given as bytes (cached:
    frames share a handful of tables, most often the full 0..255 range)."""
    levels = np.frombuffer(levels_key, dtype=np.float64)
    histogram = 255 - (levels * 255).astype(np.uint8).astype(np.intp)
    linspace = (LINSPACE_THRESHOLDS[None, :] > levels[:, None]).sum(axis=1)
    return histogram, linspace


def histogram_levels(frame: PreparedFrame) -> np.ndarray:
    """intp (256,): for each uint8 level, its truncated value ``q = (p * 255).astype(uint8)`` (convention H)."""
    return 255 - _first_points(frame.levels.tobytes())[0]


def histogram_counts(frame: PreparedFrame) -> tuple[np.ndarray, np.ndarray]:
    """Convention H: (true positives, predicted positives), each int64 (256,).

    Point ``i`` counts pixels with ``q >= 255 - i``, as the reference's flipped cumulative histogram does.
    """
    first_point = _first_points(frame.levels.tobytes())[0]
    return _cumulative(first_point, frame.fg_hist), _cumulative(first_point, frame.hist)


def linspace_counts(frame: PreparedFrame) -> tuple[np.ndarray, np.ndarray]:
    """Convention L: (true positives, predicted positives), each int64 (256,), with ``p >= t[i]`` in float64.

    A level is positive from the first ``i`` with ``t[i] <= p``; ``t`` decreases, so that index is the
    number of thresholds strictly above ``p``.
    """
    first_point = _first_points(frame.levels.tobytes())[1]
    return _cumulative(first_point, frame.fg_hist), _cumulative(first_point, frame.hist)


def adaptive_threshold(frame: PreparedFrame) -> float:
    """``min(2 * mean(p), 1)`` with the mean exactly as ``numpy.mean`` computes it on the full map.

    The mean is first taken from the histogram. Its last bits may differ from numpy's summation, which only
    matters when a present level below 1 lies within that rounding distance of ``2 * mean`` (the last bit
    then decides which side of the threshold it falls on). Only then is the full map built and averaged
    the reference's way, so the binarisation always matches the reference.
    """
    mean = float(np.dot(frame.hist, frame.levels)) / frame.n_pixels
    if mean == 0:  # every pixel is exactly 0: numpy's mean is exactly 0 too
        return 0.0
    raw = 2 * mean
    near = frame.present & (frame.levels < 1) & (np.abs(frame.levels - raw) <= _ADAPTIVE_TIE_GAP * raw)
    if near.any():
        raw = 2 * frame.pred_map.mean()
    return float(min(raw, 1))


def adaptive_counts(frame: PreparedFrame) -> tuple[int, int]:
    """(true positives, predicted positives) of ``p >= adaptive_threshold``."""
    positive = frame.levels >= adaptive_threshold(frame)
    return int(frame.fg_hist[positive].sum()), int(frame.hist[positive].sum())
