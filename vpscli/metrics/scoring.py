"""Scoring one frame with the measure families a report needs.

:func:`score_frame` returns a :class:`FrameScores`: the per-frame scalars and 256-point curves that the
aggregation (:mod:`vpscli.metrics.aggregate`) averages over frames and sequences. Only the requested
families are computed, as the reference only runs the requested metric modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpscli.metrics.emeasure import adaptive_emeasure, emeasure_curve
from vpscli.metrics.fmeasure import adaptive_fmeasure, fmeasure_curves
from vpscli.metrics.frame import PreparedFrame, prepare_frame, read_map
from vpscli.metrics.mae import mae
from vpscli.metrics.medical import medical_curves
from vpscli.metrics.smeasure import smeasure
from vpscli.metrics.wfmeasure import weighted_fmeasure


@dataclass
class FrameScores:
    """The measures of one frame.

    ``scalars``: key -> float for Smeasure, wFmeasure, MAE, adpEm, adpFm (those computed).
    ``curves``: name -> float64 (256,), strict -> lenient, for Em, Fm, Precision, Recall (convention H)
    and Dice, IoU, Sen, Spe (convention L).
    """

    scalars: dict[str, float] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    empty_gt: bool = False
    full_gt: bool = False
    resized: bool = False
    missing: bool = False
    gt_kind: str | None = None  #: how the GT file was converted (see :func:`~vpscli.metrics.frame.read_map`)
    pred_kind: str | None = None  #: how the prediction file was converted
    peak: int = 0  #: the prediction map's largest value as read (0–255): the detection view's "detected" test

    def nan_keys(self) -> list[str]:
        """Names of the scalars and curves that hold a NaN."""
        bad = [k for k, v in self.scalars.items() if v != v]
        return bad + [k for k, v in self.curves.items() if np.isnan(v).any()]


def score_frame(frame: PreparedFrame, families: frozenset[str] | set[str]) -> FrameScores:
    """Compute the measure ``families`` (see :data:`vpscli.metrics.keys.FAMILIES`) of a prepared frame."""
    scores = FrameScores(empty_gt=frame.n_fg == 0, full_gt=frame.n_fg == frame.n_pixels)
    if "smeasure" in families:
        scores.scalars["Smeasure"] = smeasure(frame)
    if "wfmeasure" in families:
        scores.scalars["wFmeasure"] = weighted_fmeasure(frame)
    if "mae" in families:
        scores.scalars["MAE"] = mae(frame)
    if "emeasure" in families:
        scores.scalars["adpEm"] = adaptive_emeasure(frame)
        scores.curves["Em"] = emeasure_curve(frame)
    if "fmeasure" in families:
        scores.scalars["adpFm"] = adaptive_fmeasure(frame)
        precision, recall, fm = fmeasure_curves(frame)
        scores.curves.update(Fm=fm, Precision=precision, Recall=recall)
    if "medical" in families:
        scores.curves.update(medical_curves(frame))
    return scores


def score_arrays(pred: np.ndarray, gt: np.ndarray, families: frozenset[str] | set[str]) -> FrameScores:
    """Score uint8 (H, W) maps; a prediction of another size is resized to the GT's as the toolbox does."""
    resized = pred.shape != gt.shape
    if resized:
        import cv2

        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]))
    scores = score_frame(prepare_frame(pred, gt), families)
    scores.resized = resized
    return scores


def score_paths(
    gt_path: str | Path, pred_paths: list[Path | None], families: frozenset[str] | set[str]
) -> list[FrameScores]:
    """Read one GT frame once and score each prediction of it (None: missing, scored as an all-zero map).

    Each result records how its files were converted (``gt_kind``, ``pred_kind``) and whether the
    prediction was resized (bilinear ``cv2.resize`` defaults, as the toolbox does).
    """
    gt, gt_kind = read_map(gt_path)
    results = []
    for pred_path in pred_paths:
        if pred_path is None:
            pred, pred_kind = np.zeros_like(gt), None
        else:
            pred, pred_kind = read_map(pred_path)
        scores = score_arrays(pred, gt, families)
        scores.missing, scores.gt_kind, scores.pred_kind = pred_path is None, gt_kind, pred_kind
        scores.peak = int(pred.max()) if pred.size else 0
        results.append(scores)
    return results


def score_files(
    gt_path: str | Path, pred_path: str | Path | None, families: frozenset[str] | set[str]
) -> FrameScores:
    """Read and score one pair; ``pred_path=None`` scores a missing prediction as an all-zero map."""
    return score_paths(gt_path, [pred_path], families)[0]
