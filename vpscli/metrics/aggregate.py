"""Averaging, exactly in the reference's order: frame -> sequence mean -> mean over sequences -> max/mean.

1. per frame: scalars (Smeasure, wFmeasure, MAE, adpEm, adpFm) and 256-point curves;
2. per sequence: the arithmetic mean over the sequence's evaluated frames (scalars with ``numpy.mean``;
   curves summed row by row, which is what ``numpy.mean(axis=0)`` does, so frames can stream);
3. per split (the "dataset"): the mean over sequences, every sequence weighing the same;
4. ``maxX`` / ``meanX`` = max / mean over the 256 points of the *dataset* curve (not a mean of maxima).

NaN spreads through every step, as with plain ``numpy.mean``/``numpy.max`` in the reference. The reference
turns a dataset scalar into 256 copies before averaging them; that (bit-level) detail is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpscli.metrics.keys import split_key
from vpscli.metrics.scoring import FrameScores


def _value(key: str, scalars: dict[str, float], curves: dict[str, np.ndarray]) -> float:
    kind, curve = split_key(key)
    if curve is None:
        return scalars[key]
    values = curves[curve]
    return float(values.max() if kind == "max" else values.mean())


@dataclass
class SequenceResult:
    """Mean scores of one sequence: ``curves`` are float64 (256,), strict -> lenient."""

    name: str
    n_frames: int
    scalars: dict[str, float]
    curves: dict[str, np.ndarray]

    def value(self, key: str) -> float:
        """A report key on this sequence (max/mean of its own mean curve, as MATLAB's per-sequence lines)."""
        if self.n_frames == 0:
            return float("nan")
        return _value(key, self.scalars, self.curves)


class SequenceAccumulator:
    """Streams the frames of one sequence, in order, into its :class:`SequenceResult`."""

    def __init__(self, name: str):
        self.name = name
        self.n_frames = 0
        self._scalars: dict[str, list[float]] = {}
        self._curve_sums: dict[str, np.ndarray] = {}

    def add(self, scores: FrameScores) -> None:
        for key, value in scores.scalars.items():
            self._scalars.setdefault(key, []).append(value)
        for key, curve in scores.curves.items():
            total = self._curve_sums.get(key)
            if total is None:
                self._curve_sums[key] = np.array(curve, dtype=np.float64)
            else:
                total += curve
        self.n_frames += 1

    def result(self) -> SequenceResult:
        n = self.n_frames
        scalars = {k: float(np.mean(np.array(v, dtype=np.float64))) for k, v in self._scalars.items()}
        curves = {k: total / n for k, total in self._curve_sums.items()}
        return SequenceResult(self.name, n, scalars, curves)


@dataclass
class DatasetResult:
    """A split's scores for one method: the mean over its (non-empty) sequences."""

    n_sequences: int
    n_frames: int
    scalars: dict[str, float]
    curves: dict[str, np.ndarray]

    def value(self, key: str) -> float:
        if self.n_sequences == 0:
            return float("nan")
        return _value(key, self.scalars, self.curves)


def aggregate_sequences(sequences: list[SequenceResult]) -> DatasetResult:
    """Mean over sequences that have evaluated frames (the others cannot be averaged; see the notes)."""
    used = [s for s in sequences if s.n_frames > 0]
    n = len(used)
    if n == 0:
        return DatasetResult(0, 0, {}, {})
    scalars: dict[str, float] = {}
    for key in used[0].scalars:
        total = 0.0
        for seq in used:
            total = total + seq.scalars[key]
        # The reference stores each scalar as 256 copies and averages them at the end.
        scalars[key] = float(np.full((1, 256), total / n).mean())
    curves: dict[str, np.ndarray] = {}
    for key in used[0].curves:
        total_curve = np.array(used[0].curves[key], dtype=np.float64)
        for seq in used[1:]:
            total_curve += seq.curves[key]
        curves[key] = total_curve / n
    return DatasetResult(n, sum(s.n_frames for s in used), scalars, curves)
