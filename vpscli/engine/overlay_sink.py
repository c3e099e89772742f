"""The overlay video of ``vps segment`` (``overlay.mp4``): :class:`OverlaySink` draws every frame with its
mask and HUD, and :class:`OverlayWriter` feeds the H.264 encoder (:func:`overlay_preset`, :func:`overlay_threads`)
on its own thread.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vpscli.engine.frame_decision import DecidedFrame
from vpscli.engine.sinks import Sink
from vpscli.engine.video_run import FrameResult
from vpscli.io.run_folder import RunFolder

if TYPE_CHECKING:
    from vpscli.engine.resume import ResumePlan
    from vpscli.engine.video_run import Timings


def overlay_preset() -> str:
    """libx264 preset of the overlay, by the cores there are. Measured on a 2-core CPU at 1080p
    (100 frames of testsrc2, crf 18, YUV input): veryfast about 50 ms of CPU per frame (6.4 Mbit/s at
    25 fps), superfast 27 ms (11.5 Mbit/s), ultrafast 12 ms (16 Mbit/s). The encoder is the pipeline's
    largest cost on small machines and competes with the model there: under 4 cores ultrafast (1.5× the
    throughput of superfast with a zero-cost model, ``bench_segment.py --model-free``), under 8
    superfast; from 8 cores up the smaller files of veryfast cost nothing in throughput."""
    from vpscli.engine.device import usable_cpus

    cpus = usable_cpus()
    return "veryfast" if cpus >= 8 else "superfast" if cpus >= 4 else "ultrafast"


def overlay_threads() -> int | None:
    """libx264's threads for the overlay, by the cores there are: one under 4 cores, else libx264's own count
    (1.5 a core). On a small machine the encoder shares the cores with the model and the decoder, which keep
    them busy, so its frame threads only add hand-overs. Measured on a 2-core CPU (``vps segment``, 250
    frames of 1080p with the overlay, OpenVINO bf16, runs alternated, start-up excluded): a polyp in every
    frame 35.5 → 36.4 frames/s (mean of ten), testsrc2 40.7 → 40.9 (six); the process's CPU time 15.9 →
    15.3–15.7 s; the same file sizes."""
    from vpscli.engine.device import usable_cpus

    return 1 if usable_cpus() < 4 else None


class OverlaySink(Sink):
    """``overlay.mp4``: every frame drawn with its mask and HUD, encoded on its own thread (frames finished
    by an earlier run included: their masks are read back, :meth:`ResumePlan.with_saved_mask`)."""

    uses_probs = False  # the mask, its box and the peak

    def __init__(self, folder: RunFolder, plan: ResumePlan, model: str, threshold: float, timings: Timings):
        self.path, self.plan, self.model, self.threshold = folder.overlay_path, plan, model, threshold
        self.timings = timings
        self.writer: OverlayWriter | None = None

    def open(self, probe) -> None:
        self.writer = OverlayWriter(
            self.path,
            probe.fps,
            (probe.width, probe.height),
            probe.frame_count,
            self.model,
            self.threshold,
            self.timings,
            vfr=probe.vfr,
        )

    def write(self, frame: DecidedFrame) -> None:
        assert self.writer is not None, "OverlaySink used before open()"
        # a finished frame is drawn from its mask on disk
        self.writer.put(self.plan.with_saved_mask(frame.result))

    def close(self) -> None:
        writer, self.writer = self.writer, None
        assert writer is not None, "OverlaySink closed before open() or twice"
        writer.close()

    def abort(self, error: BaseException | None = None) -> None:
        if self.writer is not None:
            self.writer.abort()


class OverlayWriter:
    """Renders overlay frames and feeds the H.264 writer on its own thread (bounded queue)."""

    def __init__(
        self,
        path: Path,
        fps,
        size: tuple[int, int],
        total: int,
        model: str,
        threshold: float,
        timings,
        vfr: bool = False,
    ):
        from vpscli.io.writer import VideoWriter

        self.preset = overlay_preset()
        self.writer = VideoWriter(path, fps, size, preset=self.preset, threads=overlay_threads())
        self.total, self.model, self.threshold, self.timings = total, model, threshold, timings
        #: a variable-frame-rate source: each overlay frame keeps its source frame's timestamp
        #: (a constant-rate one is written at its exact rational fps, the cheaper path)
        self.timestamps = vfr
        self.queue: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="overlay", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        from vpscli.render.hud import FrameInfo, draw_hud, draw_legend
        from vpscli.render.overlay import draw_overlay
        from vpscli.render.palette import get_palette

        palette = get_palette("default")
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain
            try:
                t0 = time.perf_counter()
                known = item.mask_area is not None  # the engine's box and area: no scan of the whole mask
                area = item.mask_area if known else int(np.count_nonzero(item.mask))
                img = draw_overlay(
                    item.image,
                    item.mask,
                    style="both",
                    palette=palette,
                    box=item.mask_box if known else None,
                    empty=area == 0,
                )
                draw_hud(
                    img,
                    FrameInfo(
                        item.index,
                        self.total,
                        item.timestamp,
                        True,
                        area / item.mask.size,
                        item.max_prob,
                        self.model,
                        self.threshold,
                    ),
                )
                draw_legend(img, palette, with_gt=False)
                self.writer.write(img, timestamp=item.timestamp if self.timestamps else None)
                self.timings.add("overlay", time.perf_counter() - t0)
            except BaseException as e:  # reported by close()
                self.error = e

    def put(self, result: FrameResult) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(result)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            self.writer.abort()
            raise self.error
        self.writer.close()

    def abort(self) -> None:
        self.error = self.error or RuntimeError("aborted")
        self.queue.put(None)
        self.thread.join(timeout=30)
        self.writer.abort()
