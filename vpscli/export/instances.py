"""Polyp instances per frame and their tracks (episodes).

An *instance* is one 8-connected component of a frame's mask with at least ``min_area``
pixels. Instances are linked into *tracks* frame to frame: an instance continues the track
of the previous exported frame's instance it overlaps most (each track continues at most
once per frame); an instance overlapping none starts a new track. So a track is one polyp
episode: consecutive frames with a detection, split where components separate — a polyp
that leaves the view and re-enters gets two tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np


@dataclass
class Instance:
    """One polyp in one frame.

    Attributes:
        frame: 0-based source frame index.
        track_id: 0-based track (episode) number, in order of first appearance.
        mask: ``(H, W)`` bool.
        score: confidence in [0, 1] (max probability inside the instance, else the frame's
            confidence), ``None`` when unknown.
    """

    frame: int
    track_id: int
    mask: np.ndarray
    score: float | None = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Tight box ``(left, top, width, height)`` in pixels."""
        ys, xs = np.nonzero(self.mask)
        left, top = int(xs.min()), int(ys.min())
        return left, top, int(xs.max()) - left + 1, int(ys.max()) - top + 1


def split_components(mask: np.ndarray, min_area: int = 0) -> list[np.ndarray]:
    """8-connected components of a ``(H, W)`` bool mask with ≥ ``min_area`` pixels, largest first."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, count), key=lambda k: (-stats[k, cv2.CC_STAT_AREA], k))
    return [labels == k for k in order if stats[k, cv2.CC_STAT_AREA] >= max(min_area, 1)]


class TrackLinker:
    """Assigns track ids to each frame's components (call :meth:`link` in frame order)."""

    def __init__(self) -> None:
        self._previous: list[tuple[int, np.ndarray]] = []  # (track id, mask) of the last frame
        self._next_id = 0

    def link(self, components: list[np.ndarray]) -> list[int]:
        """Track id of each component of the next frame (an empty list ends every track)."""
        pairs = []
        for ci, comp in enumerate(components):
            for tid, prev in self._previous:
                overlap = int(np.count_nonzero(comp & prev))
                if overlap:
                    pairs.append((overlap, ci, tid))
        ids: list[int | None] = [None] * len(components)
        taken: set[int] = set()
        for _, ci, tid in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
            if ids[ci] is None and tid not in taken:
                ids[ci] = tid
                taken.add(tid)
        for ci in range(len(components)):
            if ids[ci] is None:
                ids[ci] = self._next_id
                self._next_id += 1
        self._previous = list(zip(ids, components))  # type: ignore[arg-type]
        return ids  # type: ignore[return-value]


def instance_score(
    component: np.ndarray, probability: np.ndarray | None, frame_confidence: float | None
) -> float | None:
    """Max probability inside ``component``, else the frame's confidence, else ``None``."""
    if probability is not None:
        return round(float(probability[component].max()), 4)
    return None if frame_confidence is None else round(float(frame_confidence), 4)


@dataclass
class FrameInstances:
    """One exported frame.

    Attributes:
        index: 0-based source frame index.
        mask: ``(H, W)`` bool, the union of ``instances`` (components below ``min_area`` removed).
        instances: the frame's polyps, largest first.
        confidence: ``frames.csv`` ``max_prob``, else the max of the probability map, else ``None``.
    """

    index: int
    mask: np.ndarray
    instances: list[Instance]
    confidence: float | None


def frame_instances(sequence, min_area: int = 0) -> Iterator[FrameInstances]:
    """The frames of a :class:`~vpscli.export.mask_sequence.MaskSequence` in order, with
    instances linked into tracks; one mask in memory at a time."""
    linker = TrackLinker()
    for frame, mask in sequence:
        components = split_components(mask, min_area)
        ids = linker.link(components)
        probability = sequence.read_probability(frame)
        confidence = sequence.confidence.get(frame.index)
        if confidence is None and probability is not None:
            confidence = float(probability.max())
        confidence = None if confidence is None else round(float(confidence), 4)
        instances = [
            Instance(frame.index, tid, comp, instance_score(comp, probability, confidence))
            for tid, comp in zip(ids, components)
        ]
        kept = np.logical_or.reduce(components) if components else np.zeros_like(mask)
        yield FrameInstances(frame.index, kept, instances, confidence)


def group_tracks(instances: Iterable[Instance]) -> dict[int, list[Instance]]:
    """Instances grouped by track id (insertion order = first appearance), each in frame order."""
    tracks: dict[int, list[Instance]] = {}
    for inst in instances:
        tracks.setdefault(inst.track_id, []).append(inst)
    return tracks
