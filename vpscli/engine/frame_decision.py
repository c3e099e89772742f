"""The frame decision: what each frame's outputs say, once the persistence filter has decided it.

A frame is *flagged* when the model's mask at the threshold has a pixel and, with a presence level, its
peak probability reaches it. The level is ``--presence`` when given, else the one calibrated for the
weights on their model card (:func:`frame_presence`). A flagged frame keeps its mask only when it belongs
to a run of at least ``min_persistence`` consecutive flagged frames
(:class:`~vpscli.episodes.PersistenceFilter`); otherwise, and for a frame that is not flagged, its mask is
written empty (``suppressed`` when the model flagged it). Probability maps and ``max_prob`` stay the model's raw output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vpscli.engine.resume import ResumePlan
from vpscli.engine.video_run import FrameResult


@dataclass(frozen=True)
class DecidedFrame:
    """One frame the persistence filter has decided, as every sink receives it, in frame order.

    Attributes:
        result: the frame; its ``mask`` is the kept mask (empty when the filter suppressed it). A frame
            finished by an earlier run and not predicted again has ``mask``/``prob`` ``None``
            (:meth:`~vpscli.engine.resume.ResumePlan.with_saved_mask` reads its mask back).
        row: its ``frames.csv`` row (the earlier run's, all strings, for a finished frame).
        flagged: the model flagged it (before the filter).
        present: its kept mask has a pixel.
        finished: finished by an earlier run (PNGs and row on disk).
        on_disk: its PNGs are on disk already (finished, or written before an interrupt): not written again.
    """

    result: FrameResult
    row: dict
    flagged: bool
    present: bool
    finished: bool
    on_disk: bool


def predicted_mask(result: FrameResult) -> np.ndarray:
    """The frame's mask at the threshold. Only a frame finished by an earlier run and not predicted again
    lacks one, and its row stands for it: no decision reads its mask."""
    assert result.mask is not None, f"frame {result.name} was not predicted"
    return result.mask


def mask_rows(result: FrameResult) -> tuple[int, int] | None:
    """The rows from the first to past the last one of the frame's mask (equal when it is empty), from the
    engine's box and area; ``None`` when the frame does not carry them."""
    if result.mask_area is None:
        return None
    if result.mask_area == 0 or result.mask_box is None:
        return (0, 0)
    _, y, _, h = result.mask_box
    return (y, y + h)


def has_mask(result: FrameResult) -> bool:
    """The frame's mask at the threshold has a pixel."""
    return result.mask_area > 0 if result.mask_area is not None else bool(predicted_mask(result).any())


def frame_presence(explicit: float | None, card: float | None, threshold: float) -> float | None:
    """The presence level the frame decision uses: ``explicit`` (``--presence``) when given; else the
    weights' calibrated level (``card``, from their model card) when it lies above the threshold; else
    ``None``, and a frame counts when its mask has a pixel. ``--presence`` at the threshold is that rule too.

    >>> frame_presence(None, 0.9, 0.5), frame_presence(0.5, 0.9, 0.5), frame_presence(None, 0.9, 0.95)
    (0.9, 0.5, None)
    """
    if explicit is not None:
        return explicit
    return card if card is not None and card > threshold else None


def model_flagged(result: FrameResult, presence: float | None) -> bool:
    """The model flagged the frame: its mask has a pixel and, with a ``presence`` level, its peak
    probability reaches it."""
    return has_mask(result) and (presence is None or result.max_prob >= presence)


def suppress(result: FrameResult) -> FrameResult:
    """``result`` with an empty mask (the persistence filter's decision); the probabilities stay raw."""
    return replace(result, mask=np.zeros_like(result.mask), mask_box=None, mask_area=0)


def decide(plan: ResumePlan, result: FrameResult, flagged: bool, kept: bool) -> DecidedFrame:
    """The :class:`DecidedFrame` of a frame the filter decided (``kept``: its run is long enough). A frame
    finished by the earlier run stands as its row says."""
    name = result.name
    if plan.is_finished(name):
        row = plan.saved_row(name)
        return DecidedFrame(result, row, flagged, row["present"] == "1", finished=True, on_disk=True)
    if (flagged and not kept) or (not flagged and has_mask(result)):  # the filter's, or the frame decision's
        result = suppress(result)
    row = frame_row(result, flagged)
    return DecidedFrame(
        result, row, flagged, row["present"] == 1, finished=False, on_disk=plan.has_pngs(name)
    )


def frame_row(result: FrameResult, flagged: bool | None = None) -> dict:
    """The ``frames.csv`` row of one frame (bounding box of the mask, empty when no polyp); the
    engine's box and area are used when it gives them (a 1080p mask is not scanned again).
    ``flagged``: the model flagged the frame (default: its mask is not empty, i.e. not suppressed)."""
    mask = predicted_mask(result)
    if result.mask_area is not None:
        area, box = result.mask_area, result.mask_box
    else:
        area, box = int(np.count_nonzero(mask)), None
        if area:
            ys = np.flatnonzero(mask.any(axis=1))
            xs = np.flatnonzero(mask.any(axis=0))
            box = (int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))
    present = area > 0
    flagged = present if flagged is None else bool(flagged)
    bbox: tuple[int, int, int, int] | tuple[str, str, str, str] = ("", "", "", "")
    if present:
        assert box is not None, "a mask with pixels has a bounding box"
        bbox = box
    return {
        "index": result.index,
        "name": result.name,
        "timestamp": f"{result.timestamp:.6f}",
        "present": int(present),
        "area_fraction": f"{area / mask.size:.6f}",
        "max_prob": f"{result.max_prob:.6f}",
        "bbox_x": bbox[0],
        "bbox_y": bbox[1],
        "bbox_w": bbox[2],
        "bbox_h": bbox[3],
        "flagged": int(flagged),
        "suppressed": int(flagged and not present),
    }
