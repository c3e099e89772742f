"""Episodes — maximal runs of consecutive positive frames — and what a clinician asks of them.

Pure functions on per-frame booleans in frame order, shared by ``vps segment`` (the persistence
filter and the false-alarm summary of :mod:`vpscli.engine.run_loop`) and ``vps evaluate`` (the
detection view of :mod:`vpscli.metrics.detection`):

- :func:`runs`: the episodes of a flag sequence, as ``(start, length)``;
- :func:`persistent` / :class:`PersistenceFilter`: a flagged frame is kept only when it belongs to
  a run of at least ``min_frames`` flagged frames — the same rule, on a whole list and streaming
  (the streaming filter holds back at most ``min_frames − 1`` frames, until their run is decided);
- :func:`flag_summary`: frames flagged before and after the filter, episodes, the longest one, and
  false-alarm episodes per minute on a video said to be polyp-free;
- :func:`episode_detections`: for each ground-truth episode, the delay to its first detected frame.

A run that touches the start or the end of the video counts only the frames the video has: a run
of two flagged frames that ends the video is suppressed by ``min_frames = 3`` like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Iterable, NamedTuple, Sequence, TypeVar

T = TypeVar("T")


#: ``vps segment --min-persistence``'s default, chosen on the validation clips (``benchmarks/bench_persistence.py``,
#: table in docs/guides/polyp-free-video.md)
DEFAULT_MIN_PERSISTENCE = 6


class Run(NamedTuple):
    """An episode: ``length`` consecutive positive frames from frame position ``start``."""

    start: int
    length: int


def runs(flags: Iterable[bool]) -> list[Run]:
    """The maximal runs of true values in ``flags``, in order.

    >>> runs([False, True, True, False, True])
    [Run(start=1, length=2), Run(start=4, length=1)]
    """
    found: list[Run] = []
    start = None
    i = -1
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            found.append(Run(start, i - start))
            start = None
    if start is not None:
        found.append(Run(start, i + 1 - start))
    return found


def persistent(flags: Sequence[bool], min_frames: int) -> list[bool]:
    """``flags`` with every run shorter than ``min_frames`` cleared (``min_frames = 1``: unchanged).

    >>> persistent([True, False, True, True, True, False], min_frames=3)
    [False, False, True, True, True, False]
    """
    kept = [False] * len(flags)
    for run in runs(flags):
        if run.length >= min_frames:
            kept[run.start : run.start + run.length] = [True] * run.length
    return kept


def edge_warning(flagged: Sequence[bool], kept: Sequence[bool], min_frames: int) -> str | None:
    """A warning when the persistence filter cleared detections that a video's start or end cut short,
    or every detection of a video shorter than ``min_frames`` — cases where the filter cannot tell a
    short flicker from a polyp that was in view when the recording began or ended. ``None`` otherwise.

    The rule stays one rule (a run of fewer than ``min_frames`` flagged frames is cleared, wherever it
    lies); the warning says how many frames that cleared at the edges and how to keep them.
    """
    n = len(flagged)
    if min_frames <= 1 or not n:
        return None
    cleared = [r for r in runs(flagged) if not kept[r.start]]
    if n < min_frames and cleared:
        frames = sum(r.length for r in cleared)
        fix = "1" if n == 1 else f"{n} (or 1)"
        return (
            f"the video has {_frames(n)}, fewer than --min-persistence {min_frames}, so none of its "
            f"{_frames(frames, 'flagged ')} can be kept: pass --min-persistence {fix} to keep them"
        )
    edges = [r for r in cleared if r.start == 0 or r.start + r.length == n]
    if not edges:
        return None
    where = " and ".join(
        ("at the start" if r.start == 0 else "at the end") + f" ({_frames(r.length)})" for r in edges
    )
    total = sum(r.length for r in edges)
    return (
        f"{_frames(total, 'flagged ')} {where} {'was' if total == 1 else 'were'} cleared: the video "
        f"{'starts or ends' if len(edges) > 1 else ('starts' if edges[0].start == 0 else 'ends')} within a "
        f"run shorter than --min-persistence {min_frames}; pass --min-persistence 1 to keep every detection"
    )


def _frames(count: int, kind: str = "") -> str:
    """``1 frame``, ``3 flagged frames``: a count of frames as a warning says it."""
    return f"{count} {kind}frame{'' if count == 1 else 's'}"


class PersistenceFilter(Generic[T]):
    """:func:`persistent`, one frame at a time: :meth:`push` each frame with whether the model
    flagged it, then :meth:`finish` at the end of the video. Both return ``(item, kept)`` pairs of
    the frames decided by then, in frame order; every frame comes out exactly once.

    A flagged frame is held back while its run is shorter than ``min_frames`` and the run may still
    grow: the held frames are always the current run's, so at most ``min_frames − 1`` of them.

    >>> f = PersistenceFilter(min_frames=2)
    >>> f.push("a", True)  # held: its run may still reach 2 frames
    []
    >>> f.push("b", True)
    [('a', True), ('b', True)]
    >>> f.push("c", True), f.push("d", False)
    ([('c', True)], [('d', False)])
    >>> f.push("e", True), f.finish()  # the video ends inside a 1-frame run
    ([], [('e', False)])
    """

    def __init__(self, min_frames: int):
        if min_frames < 1:
            raise ValueError(f"min_frames must be at least 1, got {min_frames}")
        self.min_frames = min_frames
        self._held: list[T] = []
        self._run = 0  # length of the current run of flagged frames, held ones included

    @property
    def held(self) -> int:
        """Frames pushed but not yet decided."""
        return len(self._held)

    def push(self, item: T, flagged: bool) -> list[tuple[T, bool]]:
        if not flagged:
            # the run (if any) ended shorter than min_frames: everything held is suppressed
            out = [(held, False) for held in self._held] + [(item, False)]
            self._held, self._run = [], 0
            return out
        self._run += 1
        if self._run >= self.min_frames:
            out = [(held, True) for held in self._held] + [(item, True)]
            self._held = []
            return out
        self._held.append(item)
        return []

    def finish(self) -> list[tuple[T, bool]]:
        """The end of the video: a run still held never reached ``min_frames``."""
        out = [(held, False) for held in self._held]
        self._held, self._run = [], 0
        return out


@dataclass(frozen=True)
class FlagSummary:
    """What a video's flagged frames add up to, before and after the persistence filter.

    ``longest`` is the longest episode after the filter (``None`` when no frame is left flagged);
    per-minute rates and seconds need the frame rate and are ``None`` without it. The flagged
    frames are false alarms when the video is polyp-free (``expect_negative``): only then are the
    false-alarm rates given.
    """

    frames: int
    fps: float | None
    expect_negative: bool
    flagged_before: int
    flagged_after: int
    episodes_before: int
    episodes_after: int
    longest: Run | None

    @property
    def minutes(self) -> float | None:
        return self.frames / self.fps / 60.0 if self.fps and self.frames else None

    def seconds(self, frames: int) -> float | None:
        return frames / self.fps if self.fps else None

    def per_minute(self, episodes: int) -> float | None:
        """False-alarm episodes per minute (only for a video said to be polyp-free)."""
        minutes = self.minutes
        return episodes / minutes if self.expect_negative and minutes else None

    def to_json(self) -> dict:
        """The ``run.json`` ``false_alarm_summary`` object."""
        longest = (
            None
            if self.longest is None
            else {
                "first_frame": self.longest.start,
                "frames": self.longest.length,
                "seconds": _round(self.seconds(self.longest.length)),
            }
        )
        return {
            "expect_negative": self.expect_negative,
            "frames": self.frames,
            "fps": self.fps,
            "flagged_frames_before_filter": self.flagged_before,
            "flagged_frames_after_filter": self.flagged_after,
            "suppressed_frames": self.flagged_before - self.flagged_after,
            "episodes_before_filter": self.episodes_before,
            "episodes_after_filter": self.episodes_after,
            "longest_episode": longest,
            "false_alarm_episodes_per_minute_before_filter": _round(self.per_minute(self.episodes_before)),
            "false_alarm_episodes_per_minute": _round(self.per_minute(self.episodes_after)),
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def flag_summary(
    flagged: Sequence[bool], kept: Sequence[bool], fps: float | None, expect_negative: bool = False
) -> FlagSummary:
    """Summarise a video's frames: ``flagged`` by the model, ``kept`` by the filter (same length)."""
    if len(flagged) != len(kept):
        raise ValueError(f"{len(flagged)} flagged values for {len(kept)} kept values")
    after = runs(kept)
    longest = max(after, key=lambda r: r.length) if after else None  # the first of equal lengths
    return FlagSummary(
        frames=len(flagged),
        fps=float(fps) if fps else None,
        expect_negative=expect_negative,
        flagged_before=sum(map(bool, flagged)),
        flagged_after=sum(map(bool, kept)),
        episodes_before=len(runs(flagged)),
        episodes_after=len(after),
        longest=longest,
    )


@dataclass(frozen=True)
class EpisodeDetection:
    """One ground-truth episode and when it was first detected.

    ``delay``: frames from the episode's first frame to the first detected frame inside it (0: at
    once); ``None`` when no frame of the episode is detected (missed).
    """

    start: int
    frames: int
    delay: int | None

    @property
    def missed(self) -> bool:
        return self.delay is None


def episode_detections(gt_positive: Sequence[bool], detected: Sequence[bool]) -> list[EpisodeDetection]:
    """Each run of ground-truth-positive frames with its time to first detection, in frames."""
    if len(gt_positive) != len(detected):
        raise ValueError(f"{len(gt_positive)} ground-truth values for {len(detected)} detections")
    out = []
    for run in runs(gt_positive):
        inside = detected[run.start : run.start + run.length]
        delay = next((i for i, hit in enumerate(inside) if hit), None)
        out.append(EpisodeDetection(run.start, run.length, delay))
    return out
