"""The detection view of ``vps evaluate``: what a clinician asks of each video, next to the toolbox numbers.

Per (split, method, sequence), over **every** GT frame of the sequence — the toolbox's dropping of the
first and last frame is a benchmark convention, while "was this polyp seen, and how soon" is a question
about the whole video:

- a frame is **GT-positive** when its GT has a foreground pixel (GT > 128, the toolbox's rule);
- it is **detected** when its predicted mask is non-empty. For a ``vps segment`` folder that is the
  ``masks/`` the run wrote (thresholded at the run's threshold, after its persistence filter), even
  when the toolbox numbers come from ``probs/``; for other predictions — or when a threshold is given —
  it is the scored map binarised at the threshold, a pixel being positive when ``v / 255 ≥ t``.
  A frame without a prediction file is not detected (and counted in ``missing``);
- **sensitivity** = detected GT-positive frames / GT-positive frames, **specificity** = undetected
  GT-negative frames / GT-negative frames (``None`` when the video has none of that kind);
- a **negative video** has an empty GT on every frame: its runs of detected frames are its
  **false-alarm episodes**, given per minute when the frame rate is known;
- a **polyp episode** is a maximal run of consecutive GT-positive frames; its **time to first
  detection** is the frames (and seconds, when the frame rate is known) from its first frame to the
  first detected frame inside it, or ``missed``.

The dataset level pools the frames of its sequences (sensitivity over all GT-positive frames, …),
sums episodes, and gives false alarms per minute over the negative videos' total duration.
The toolbox numbers are computed elsewhere, untouched.
"""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vpscli.episodes import EpisodeDetection, episode_detections, runs
from vpscli.io.run_folder import MASKS, RunFolder
from vpscli.io.run_record import find_run_json, read_run_record
from vpscli.metrics.layout import Plan, Sequence
from vpscli.metrics.layout.discover import list_predictions

#: the threshold of prediction maps that are not ``vps segment`` masks, when none is given
DEFAULT_THRESHOLD = 0.5


@dataclass
class SequenceDetection:
    """The detection view of one video (see the module doc)."""

    name: str
    frames: int
    gt_positive: int
    true_positive: int  #: detected GT-positive frames
    false_positive: int  #: detected GT-negative frames
    episodes: list[EpisodeDetection]
    false_alarm_episodes: int | None  #: runs of detected frames on a negative video; None on others
    fps: float | None
    source: str  #: what "detected" was read from: ``masks/`` or ``maps ≥ t``
    missing: int = 0  #: frames without a prediction file (not detected)
    #: numbered GT frames absent between the first and the last: ``(first, last)`` frame numbers of each gap;
    #: episodes and runs never span a gap (what happened there is unknown)
    gaps: list[tuple[int, int]] = field(default_factory=list)

    @property
    def gt_negative(self) -> int:
        return self.frames - self.gt_positive

    @property
    def negative(self) -> bool:
        return self.gt_positive == 0

    @property
    def sensitivity(self) -> float | None:
        return self.true_positive / self.gt_positive if self.gt_positive else None

    @property
    def specificity(self) -> float | None:
        return (self.gt_negative - self.false_positive) / self.gt_negative if self.gt_negative else None

    @property
    def minutes(self) -> float | None:
        return self.frames / self.fps / 60.0 if self.fps else None

    @property
    def false_alarms_per_minute(self) -> float | None:
        if self.false_alarm_episodes is None or not self.minutes:
            return None
        return self.false_alarm_episodes / self.minutes

    def seconds(self, frames: int | None) -> float | None:
        return None if frames is None or not self.fps else frames / self.fps

    @property
    def median_delay_frames(self) -> float | None:
        """Median time to first detection over this video's detected polyp episodes, in frames."""
        return _median([e.delay for e in self.episodes if not e.missed])

    def to_json(self) -> dict:
        return {
            "frames": self.frames,
            "gt_positive_frames": self.gt_positive,
            "detected_gt_positive": self.true_positive,
            "detected_gt_negative": self.false_positive,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "negative_video": self.negative,
            "false_alarm_episodes": self.false_alarm_episodes,
            "false_alarm_episodes_per_minute": self.false_alarms_per_minute,
            "fps": self.fps,
            "polyp_episodes": [
                {
                    "first_frame": e.start,
                    "frames": e.frames,
                    "detected": not e.missed,
                    "time_to_first_detection_frames": e.delay,
                    "time_to_first_detection_seconds": self.seconds(e.delay),
                }
                for e in self.episodes
            ],
            "median_time_to_first_detection_frames": self.median_delay_frames,
            "detected_from": self.source,
            "missing_predictions": self.missing,
        }


@dataclass
class DatasetDetection:
    """The detection view of a split for one method: frames pooled over its videos."""

    sequences: list[SequenceDetection] = field(default_factory=list)

    def _sum(self, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.sequences)

    @property
    def sensitivity(self) -> float | None:
        positives = self._sum("gt_positive")
        return self._sum("true_positive") / positives if positives else None

    @property
    def specificity(self) -> float | None:
        negatives = self._sum("gt_negative")
        return (negatives - self._sum("false_positive")) / negatives if negatives else None

    @property
    def episodes(self) -> list[tuple[SequenceDetection, EpisodeDetection]]:
        return [(s, e) for s in self.sequences for e in s.episodes]

    @property
    def median_delay_frames(self) -> float | None:
        """Median time to first detection over the detected polyp episodes, in frames."""
        return _median([e.delay for _, e in self.episodes if not e.missed])

    @property
    def false_alarms_per_minute(self) -> float | None:
        """False-alarm episodes over the negative videos' total duration (all must have a frame rate)."""
        negatives = [s for s in self.sequences if s.negative]
        if not negatives or any(s.minutes is None for s in negatives):
            return None
        return sum(s.false_alarm_episodes for s in negatives) / sum(s.minutes for s in negatives)

    def to_json(self) -> dict:
        negatives = [s for s in self.sequences if s.negative]
        return {
            "videos": len(self.sequences),
            "negative_videos": len(negatives),
            "frames": self._sum("frames"),
            "gt_positive_frames": self._sum("gt_positive"),
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "polyp_episodes": len(self.episodes),
            "polyp_episodes_detected": sum(not e.missed for _, e in self.episodes),
            "median_time_to_first_detection_frames": self.median_delay_frames,
            "false_alarm_episodes": sum(s.false_alarm_episodes for s in negatives) if negatives else None,
            "false_alarm_episodes_per_minute": self.false_alarms_per_minute,
        }


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def frame_gaps(names: list[str]) -> tuple[list[int], list[tuple[int, int]]]:
    """For GT frames named by number (``000007.png``) in sequence order: the indices where a new stretch of
    consecutive numbers starts (after a gap), and each gap's ``(first, last)`` missing number. Frames not all
    named by number have no gaps."""
    from pathlib import Path as _Path

    stems = [_Path(n).stem for n in names]
    if not stems or not all(s.isdigit() for s in stems):
        return [], []
    numbers = [int(s) for s in stems]
    starts, gaps = [], []
    for i in range(1, len(numbers)):
        if numbers[i] > numbers[i - 1] + 1:
            starts.append(i)
            gaps.append((numbers[i - 1] + 1, numbers[i] - 1))
    return starts, gaps


def sequence_detection(
    name: str,
    gt_positive: list[bool],
    detected: list[bool],
    fps: float | None,
    source: str,
    missing: int = 0,
    frame_names: list[str] | None = None,
) -> SequenceDetection:
    """The detection view of one video from its per-frame GT positivity and detections (pure). With
    ``frame_names`` numbered with gaps, episodes and false-alarm runs are counted within each stretch of
    consecutive frames, never across a gap."""
    if len(gt_positive) != len(detected):
        raise ValueError(f"{len(gt_positive)} GT frames for {len(detected)} detections")
    gt = np.asarray(gt_positive, bool)
    hit = np.asarray(detected, bool)
    negative = not gt.any()
    starts, gaps = frame_gaps(frame_names) if frame_names is not None else ([], [])
    bounds = list(zip([0, *starts], [*starts, len(gt)]))
    episodes = [
        replace(e, start=e.start + a)
        for a, b in bounds
        for e in episode_detections(gt_positive[a:b], detected[a:b])
    ]
    alarms = sum(len(runs(detected[a:b])) for a, b in bounds) if negative else None
    return SequenceDetection(
        name=name,
        frames=len(gt),
        gt_positive=int(gt.sum()),
        true_positive=int((gt & hit).sum()),
        false_positive=int((~gt & hit).sum()),
        episodes=episodes,
        false_alarm_episodes=alarms,
        fps=fps,
        source=source,
        missing=missing,
        gaps=gaps,
    )


def detection_source(folder: Path | None, threshold: float | None) -> tuple[Path | None, float | None]:
    """Where detections are read for one case: ``(folder, threshold)``; threshold ``None`` means "mask
    non-empty" (a ``vps segment`` run's ``masks/``), else maps binarised at it."""
    if folder is None:
        return None, DEFAULT_THRESHOLD if threshold is None else threshold
    masks = RunFolder.of(folder).masks_dir
    if threshold is None and masks.is_dir() and find_run_json(masks) is not None:
        return masks, None
    return folder, DEFAULT_THRESHOLD if threshold is None else threshold


def sequence_fps(folder: Path | None, fps: float | None) -> float | None:
    """The frame rate of a case: its ``vps segment`` run's, when that segmented a video file (a frame
    folder's rate is only what ``--fps`` said there), else ``fps`` (``vps evaluate --fps``), else ``None``."""
    if folder is not None and find_run_json(folder) is not None:
        probe = read_run_record(folder).get("probe") or {}
        if probe.get("kind") == "video" and probe.get("fps"):
            return float(probe["fps"])
    return fps


def _read_flags(gt_path: Path, pred_path: Path | None, threshold: float | None) -> tuple[bool, bool]:
    """(GT-positive, detected) of one frame."""
    from vpscli.metrics.frame import read_map

    gt = read_map(gt_path)[0]
    if pred_path is None:
        return bool((gt > 128).any()), False
    pred = read_map(pred_path)[0]
    detected = pred.any() if threshold is None else (pred >= 255.0 * threshold).any()
    return bool((gt > 128).any()), bool(detected)


def _gt_positive(gt_path: Path) -> bool:
    from vpscli.metrics.frame import read_map

    return bool((read_map(gt_path)[0] > 128).any())


def _run_rows(source_dir: Path, preds: list[Path | None]) -> list[bool] | None:
    """Whether each mask of a ``vps segment`` run is non-empty, from its ``frames.csv`` (``present``: the
    mask written, after the persistence filter) instead of decoding every PNG again; ``None`` when a
    mask has no row (then the PNGs are read)."""
    rows = RunFolder.of(source_dir).rows()
    out = []
    for p in preds:
        row = rows.get(p.stem) if p is not None else None
        if p is not None and (row is None or row.get("present") not in ("0", "1")):
            return None
        out.append(p is not None and row["present"] == "1")
    return out


def _one_sequence(
    seq: Sequence,
    folder: Path | None,
    threshold: float | None,
    fps: float | None,
    pool: ThreadPoolExecutor,
    known: dict | None = None,
) -> SequenceDetection:
    source_dir, t = detection_source(folder, threshold)
    listing = list_predictions(source_dir) if source_dir is not None else None
    hits = [listing.find(name) if listing is not None else None for name in seq.frames]
    preds = [source_dir / hit if hit is not None else None for hit in hits]
    from_rows = _run_rows(source_dir, preds) if t is None and source_dir is not None else None
    if from_rows is not None:
        gt = list(pool.map(lambda name: _gt_positive(seq.gt_dir / name), seq.frames))
        flags = list(zip(gt, from_rows))
    else:
        known = known or {}

        def flag(job):
            name, pred = job
            if (
                t is not None and pred is not None and pred in known
            ):  # the scoring pass read this file already
                gt_positive, peak = known[pred]
                return gt_positive, peak >= 255.0 * t
            return _read_flags(seq.gt_dir / name, pred, t)

        flags = list(pool.map(flag, zip(seq.frames, preds)))
    source = f"{MASKS}/ (non-empty)" if t is None else f"maps ≥ {t:g}"
    return sequence_detection(
        seq.name,
        [g for g, _ in flags],
        [d for _, d in flags],
        sequence_fps(folder, fps),
        source,
        missing=sum(p is None for p in preds),
        frame_names=list(seq.frames),
    )


def detection_view(
    plan: Plan,
    threshold: float | None = None,
    fps: float | None = None,
    workers: int = 4,
    known: dict | None = None,
) -> dict[tuple[str, str], DatasetDetection]:
    """The detection view of every (split, method) of ``plan`` (frames read on ``workers`` threads:
    decoding PNGs releases the GIL). ``known``: :attr:`EvaluationResult.flags` of the same plan — the GT
    positivity and peak of every file the scoring pass read, which is then not read again (the sequences'
    first and last frames, which the toolbox leaves out, still are)."""
    out: dict[tuple[str, str], DatasetDetection] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="detect") as pool:
        for split in plan.splits:
            for method in plan.methods:
                folders = plan.pred_dirs.get((split.name, method))
                if folders is None:
                    continue
                out[(split.name, method)] = DatasetDetection(
                    [
                        _one_sequence(seq, folders.get(seq.name), threshold, fps, pool, known)
                        for seq in split.sequences
                    ]
                )
    return out
