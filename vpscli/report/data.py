"""What a review page shows, read from what ``vps segment`` wrote (through :class:`~vpscli.io.run_folder.RunFolder`):
``run.json`` (the run), ``frames.csv`` (one row per frame) and ``masks/`` (the episode thumbnails' masks).

An **episode** is a run of consecutive frames whose written mask is not empty (``present``: after the
frame decision and the persistence filter), as the summary table and ``run.json`` count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpscli.episodes import runs
from vpscli.errors import InputError
from vpscli.io.run_folder import RunFolder

__all__ = ["Episode", "RunReport", "read_run"]


@dataclass(frozen=True)
class Episode:
    """One run of frames with a mask.

    Attributes:
        start, end: first and last frame index (inclusive); ``start_s`` the first frame's timestamp,
            ``end_s`` the end of the last frame (its timestamp plus one frame time).
        peak, mean: the largest and the mean peak probability of its frames.
        largest: the frame with the largest mask (its index), ``largest_area`` its share of the frame,
            ``largest_box`` its mask's box ``(x, y, w, h)``.
    """

    number: int
    start: int
    end: int
    start_s: float
    end_s: float
    peak: float
    mean: float
    largest: int
    largest_area: float
    largest_box: tuple[int, int, int, int] | None

    @property
    def frames(self) -> int:
        return self.end - self.start + 1

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class RunReport:
    """One video's run, as the page shows it (arrays per frame, in frame order)."""

    folder: Path
    name: str
    record: dict
    names: list[str]
    timestamps: np.ndarray  #: seconds, float64
    peak: np.ndarray  #: the model's peak probability per frame
    present: np.ndarray  #: a mask was written (after the frame decision and the filter)
    flagged: np.ndarray  #: the model flagged the frame (before the filter)
    suppressed: np.ndarray  #: flagged, emptied by the persistence filter
    area: np.ndarray  #: mask area as a share of the frame
    boxes: list[tuple[int, int, int, int] | None]
    episodes: list[Episode] = field(default_factory=list)
    gt_positive: np.ndarray | None = None  #: with ground truth: the GT frames showing a polyp

    @property
    def frames(self) -> int:
        return len(self.names)

    @property
    def duration_s(self) -> float:
        fps = self.fps
        if not self.frames:
            return 0.0
        return float(self.timestamps[-1]) + (1.0 / fps if fps else 0.0)

    @property
    def fps(self) -> float | None:
        probe = self.record.get("probe") or {}
        fps = probe.get("fps")
        return float(fps) if isinstance(fps, (int, float)) and fps > 0 else None

    @property
    def status(self) -> str:
        return str(self.record.get("status") or "unknown")

    @property
    def overlay(self) -> Path | None:
        path = RunFolder(self.folder).overlay_path
        return path if path.is_file() and self.status in ("complete", "partial") else None


def _box(row: dict) -> tuple[int, int, int, int] | None:
    try:
        return tuple(int(row[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))  # type: ignore[return-value]
    except (KeyError, ValueError):
        return None


def _flag(row: dict, key: str) -> bool:
    return str(row.get(key, "0")) == "1"


def read_run(folder: str | Path) -> RunReport:
    """The page's data of one ``vps segment`` run folder.

    Raises:
        InputError: the folder holds no ``run.json`` or no ``frames.csv`` (not a vps segment run).
    """
    run = RunFolder(folder)
    record = run.record()
    if not record:
        raise InputError(
            "holds no readable run.json: not a vps segment run folder",
            path=run.path,
            fix="pass a folder vps segment wrote (OUT/<video name>/)",
        )
    rows = sorted(run.rows().values(), key=lambda r: int(r["index"]))
    names = [r["name"] for r in rows]
    out = RunReport(
        folder=run.path,
        name=run.path.name,
        record=record,
        names=names,
        timestamps=np.array([float(r["timestamp"]) for r in rows], np.float64),
        peak=np.array([float(r["max_prob"]) if r.get("max_prob") not in (None, "") else 0.0 for r in rows]),
        present=np.array([_flag(r, "present") for r in rows], bool),
        flagged=np.array(
            [
                _flag(r, "flagged") if r.get("flagged") not in (None, "") else _flag(r, "present")
                for r in rows
            ],
            bool,
        ),
        suppressed=np.array([_flag(r, "suppressed") for r in rows], bool),
        area=np.array([float(r["area_fraction"]) if r.get("area_fraction") else 0.0 for r in rows]),
        boxes=[_box(r) for r in rows],
    )
    out.episodes = _episodes(out)
    return out


def _episodes(r: RunReport) -> list[Episode]:
    frame_time = 1.0 / r.fps if r.fps else 0.0
    episodes = []
    for k, run in enumerate(runs(r.present.tolist()), start=1):
        a, b = run.start, run.start + run.length - 1
        peaks = r.peak[a : b + 1]
        largest = a + int(np.argmax(r.area[a : b + 1]))
        episodes.append(
            Episode(
                number=k,
                start=a,
                end=b,
                start_s=float(r.timestamps[a]),
                end_s=float(r.timestamps[b]) + frame_time,
                peak=float(peaks.max()),
                mean=float(peaks.mean()),
                largest=largest,
                largest_area=float(r.area[largest]),
                largest_box=r.boxes[largest],
            )
        )
    return episodes
