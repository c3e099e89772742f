"""Where a video's decided frames go: the :class:`Sink` interface and :class:`FrameFilesSink` (``masks/``,
``probs/`` and ``frames.csv``). The overlay video's sink is :class:`~vpscli.engine.overlay_sink.OverlaySink`;
``vps segment``'s set is :func:`~vpscli.engine.run_loop.default_sinks`.

Sinks are independent of each other: each receives every :class:`~vpscli.engine.frame_decision.DecidedFrame`
in frame order, and any order of sinks writes the same files.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from vpscli.engine.frame_decision import DecidedFrame, mask_rows, predicted_mask
from vpscli.errors import VpsError
from vpscli.io.frames_csv import RowWriter
from vpscli.io.masks import write_levels, write_mask
from vpscli.io.run_folder import RunFolder

if TYPE_CHECKING:
    from vpscli.engine.video_run import Timings

_Part = TypeVar("_Part", ThreadPoolExecutor, RowWriter)


class Sink(ABC):
    """Where decided frames go: :meth:`open` before the first, :meth:`write` each in frame order, then
    :meth:`close` after the last — or :meth:`abort` after an error or interrupt (possibly before
    :meth:`open`, or after :meth:`close`). Example: ``segment_video(seg, src, opts, sinks=lambda *a:
    default_sinks(*a) + [MySink()])``.

    ``uses_probs``: whether :meth:`write` reads the frames' probability maps (``frame.result.prob``); a
    video's maps are computed only when one of its sinks does (they cost more than the masks).
    """

    uses_probs: bool = True

    def open(self, probe) -> None:  # noqa: B027 - optional hook
        """Before the first frame; ``probe`` is the source's :class:`~vpscli.io.probe.Probe`."""

    @abstractmethod
    def write(self, frame: DecidedFrame) -> None:
        """One decided frame."""

    @abstractmethod
    def close(self) -> None:
        """After the last frame: finish the output (raises when it cannot)."""

    def abort(self, error: BaseException | None = None) -> None:  # noqa: B027 - optional hook
        """After an error or interrupt: keep what is whole, drop the rest (best effort)."""


def png_workers() -> int:
    """Threads encoding a video's PNGs (OpenCV's encoder releases the GIL): half the usable cores,
    2 to 8. A 1080p mask costs ~6 ms, so 8 threads keep up with ~1,000 frames/s of masks and
    probability maps; more would only compete with decoding and the overlay's encoder."""
    from vpscli.engine.device import usable_cpus

    return max(2, min(8, usable_cpus() // 2))


class FrameFilesSink(Sink):
    """``masks/<name>.png`` (and ``probs/<name>.png`` when ``save_prob``) on a pool of :func:`png_workers`
    threads, and ``frames.csv``: one row per frame, in frame order, each written (and flushed) only once the
    frame's PNGs are on disk, so a killed run (``kill -9``, power cut aside) leaves rows that ``--resume``
    can trust. At most twice as many PNG writes as threads are in flight, which bounds memory (each holds
    a frame's maps)."""

    def __init__(self, folder: RunFolder, save_prob: bool, timings: Timings):
        self.folder, self.save_prob, self.timings = folder, save_prob, timings
        self.uses_probs = save_prob
        self.workers = png_workers()
        self.pool: ThreadPoolExecutor | None = None
        self.in_flight: deque[Future] = deque()
        self.rows: RowWriter | None = None
        self.pending: deque[tuple[Future | None, dict]] = deque()  # frames in order: PNG job, frames.csv row

    def open(self, probe) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="png")
        self.rows = self.folder.open_rows()

    def write(self, frame: DecidedFrame) -> None:
        job = None if frame.on_disk else self._write_pngs(frame)
        self.pending.append((job, frame.row))
        self._flush(wait=False)

    def _write_pngs(self, frame: DecidedFrame) -> Future:
        result, folder, pool = frame.result, self.folder, self._opened(self.pool)
        job = pool.submit(
            _write_pngs,
            folder.mask_path(result.name),
            predicted_mask(result),
            mask_rows(result),
            folder.prob_path(result.name) if self.save_prob else None,
            result.prob,
            self.timings,
        )
        self.in_flight.append(job)
        while self.in_flight and (len(self.in_flight) > 2 * self.workers or self.in_flight[0].done()):
            self.in_flight.popleft().result()  # re-raises a failed write (disk full) at once
        return job

    def _flush(self, wait: bool) -> None:
        """Write the rows whose PNGs are on disk, in frame order (``wait``: every row, waiting for its PNGs)."""
        pending = self.pending
        while pending and (wait or pending[0][0] is None or pending[0][0].done()):
            job, row = pending.popleft()
            if job is not None:
                job.result()  # re-raises a failed write (disk full) at once
            self._opened(self.rows).write(row)

    def close(self) -> None:
        while self.in_flight:
            self.in_flight.popleft().result()
        self._opened(self.pool).shutdown(wait=True)
        self._flush(wait=True)
        self._opened(self.rows).commit()

    @staticmethod
    def _opened(part: _Part | None) -> _Part:
        """The PNG pool or row writer, which :meth:`open` made: frames come only between it and :meth:`close`."""
        assert part is not None, "FrameFilesSink used before open()"
        return part

    def abort(self, error: BaseException | None = None) -> None:
        """Stop the PNG writes, then keep the rows of the frames whose PNGs reached the disk (this run's and
        earlier ones'), and only their PNGs (:meth:`RunFolder.keep_finished_rows`)."""
        for job in self.in_flight:
            job.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        if self.rows is not None:
            _salvage_rows(self.pending, self.rows)
            self.rows.discard()
        self.folder.keep_finished_rows(self.save_prob)


def _salvage_rows(pending: deque, rows: RowWriter) -> None:
    """After an error or interrupt: the rows of the frames whose PNG writes did finish, in order
    (best effort), so that ``--resume`` keeps every frame that reached the disk."""
    for job, row in pending:
        if job is not None and (job.cancelled() or job.exception() is not None):
            break
        try:
            rows.write(row)
        except VpsError:
            break


def _write_pngs(
    mask_path: Path,
    mask: np.ndarray,
    rows: tuple[int, int] | None,
    prob_path: Path | None,
    prob: np.ndarray | None,
    timings,
) -> None:
    """One frame's mask (and probability) PNGs; takes the arrays, not the frame, to hold less memory."""
    t0 = time.perf_counter()
    write_mask(mask_path, mask, rows)
    if prob_path is not None:
        assert prob is not None, "a run that writes probs/ computes the probability maps"
        write_levels(prob_path, prob)
    timings.add("png", time.perf_counter() - t0)
