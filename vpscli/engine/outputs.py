"""Per-video outputs of ``vps segment``, written while the video streams.

``OUT/<name>/``:

- ``masks/<frame>.png``: 8-bit 0/255 at the source resolution (``000123`` for videos, the
  frame's own name for frame folders);
- ``probs/<frame>.png`` (``save_prob``): ``floor(255·p)``;
- ``overlay.mp4`` (``overlay``): H.264, the source's fps and frame count;
- ``frames.csv``: index, name, timestamp, present, area fraction, max probability, bounding box;
- ``run.json``: versions, model, weights sha256, device, precision, threshold, input probe,
  timings per stage, and ``status`` (``complete`` marks a finished video).

Every file is written under a temporary name and renamed: an interrupt leaves only whole
files, and ``frames.csv`` then holds the rows of the frames whose masks were written.
``resume`` skips finished videos and continues a partial one from its written frames: a
frame with its mask (and probability) PNG and its ``frames.csv`` row is not predicted
again, and the model runs only where outputs are missing, plus the frames it needs to
rebuild its state exactly (:meth:`~vpscli.models.base.ModelSpec.replay_frames`: none for
PNS-Net/PNS+, 9 for CFFM's feature cache, all earlier frames for AEN's clip memory). The
result is bit-identical to an uninterrupted run. Finished work is never overwritten silently.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import queue
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from vpscli import __version__
from vpscli.engine.segmenter import FrameResult, Segmenter
from vpscli.errors import OutputError, VpsError
from vpscli.io.atomic import partial_path, write_text_atomic
from vpscli.io.masks import read_mask, write_levels, write_mask

CSV_COLUMNS = ("index", "name", "timestamp", "present", "area_fraction", "max_prob", "bbox_x", "bbox_y", "bbox_w",
               "bbox_h")
#: PNG writes in flight per video (bounds memory: each holds one frame's mask and probability)
PNG_INFLIGHT = 8
#: libx264 preset of the overlay: on small CPUs the encoder competes with the model, and
#: "veryfast" costs a fraction of "medium" for a review video at crf 18
OVERLAY_PRESET = "veryfast"


@dataclass
class SegmentOptions:
    """What to write. ``out_root/<source name>/`` receives one video's outputs."""

    out_root: Path = Path("vps-out")
    save_prob: bool = False
    overlay: bool = True
    resume: bool = False
    overwrite: bool = False


@dataclass
class VideoReport:
    """What happened to one input."""

    name: str
    out_dir: Path
    status: str  # complete | skipped
    frames: int = 0
    frames_with_polyp: int = 0
    seconds: float = 0.0
    reused_masks: int = 0
    warnings: list[str] = field(default_factory=list)


def frame_row(result: FrameResult) -> dict:
    """The ``frames.csv`` row of one frame (bounding box of the mask, empty when no polyp)."""
    mask = result.mask
    present = bool(mask.any())
    if present:
        ys = np.flatnonzero(mask.any(axis=1))
        xs = np.flatnonzero(mask.any(axis=0))
        box = (int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))
    else:
        box = ("", "", "", "")
    return {"index": result.index, "name": result.name, "timestamp": f"{result.timestamp:.6f}",
            "present": int(present), "area_fraction": f"{mask.mean():.6f}", "max_prob": f"{result.max_prob:.6f}",
            "bbox_x": box[0], "bbox_y": box[1], "bbox_w": box[2], "bbox_h": box[3]}


def read_rows(out_dir: Path) -> dict[str, dict]:
    """``frames.csv`` rows an earlier run of ``out_dir`` left, by frame name: the saved file (an
    interrupt writes the finished rows there) and, newer, the partial file of a killed run (its
    last line may be cut short; incomplete rows are dropped)."""
    rows: dict[str, dict] = {}
    csv_path = out_dir / "frames.csv"
    for path in (csv_path, partial_path(csv_path)):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        text = text[:text.rfind("\n") + 1]  # a killed writer may have left its last line unfinished
        try:
            for row in csv.DictReader(io.StringIO(text)):
                if None not in row and None not in row.values() and row["index"].isdigit():
                    rows[row["name"]] = row
        except csv.Error:
            continue
    return rows


def read_status(out_dir: Path) -> str | None:
    """``status`` recorded in ``out_dir/run.json`` (``None`` when absent or unreadable)."""
    try:
        return json.loads((out_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def _versions() -> dict:
    import cv2
    import torch

    from vpscli.io.ffmpeg import ffmpeg_version

    return {"vps": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "opencv": cv2.__version__, "ffmpeg": ffmpeg_version(), "numpy": np.__version__}


class _OverlayWriter:
    """Renders overlay frames and feeds the H.264 writer on its own thread (bounded queue)."""

    def __init__(self, path: Path, fps, size: tuple[int, int], total: int, model: str, threshold: float, timings):
        from vpscli.io.writer import VideoWriter

        self.writer = VideoWriter(path, fps, size, preset=OVERLAY_PRESET)
        self.total, self.model, self.threshold, self.timings = total, model, threshold, timings
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
                img = draw_overlay(item.image, item.mask, style="both", palette=palette)
                draw_hud(img, FrameInfo(item.index, self.total, item.timestamp, True, float(item.mask.mean()),
                                        item.max_prob, self.model, self.threshold))
                draw_legend(img, palette, with_gt=False)
                self.writer.write(img)
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


def _prepare(out_dir: Path, opts: SegmentOptions) -> str:
    """Decide what to do with ``out_dir``: ``fresh``, ``resume`` or ``skip``."""
    finished = read_status(out_dir) == "complete"
    if not finished and not (out_dir.exists() and any(out_dir.iterdir())):
        return "fresh"
    if opts.overwrite:
        shutil.rmtree(out_dir)
        return "fresh"
    if opts.resume:
        return "skip" if finished else "resume"
    if finished:
        raise OutputError("already segmented (run.json says complete)", path=out_dir,
                          fix="use --resume to skip finished videos, or --overwrite to redo them")
    raise OutputError("holds an unfinished run", path=out_dir,
                      fix="use --resume to continue it, or --overwrite to start again")


def segment_video(segmenter: Segmenter, source, opts: SegmentOptions,
                  on_frame: Callable[[FrameResult], None] | None = None) -> VideoReport:
    """Segment one source into ``opts.out_root/<source.name>/`` (see the module doc).

    ``on_frame`` is called after each frame's outputs are queued (progress bars).
    """
    out_dir = Path(opts.out_root) / source.name
    mode = _prepare(out_dir, opts)
    if mode == "skip":
        return VideoReport(source.name, out_dir, "skipped")
    probe = source.probe()  # unreadable inputs fail here, before any folder is made
    masks_dir, probs_dir = out_dir / "masks", out_dir / "probs"
    try:
        masks_dir.mkdir(parents=True, exist_ok=True)
        if opts.save_prob:
            probs_dir.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output folder ({e.strerror})", path=out_dir,
                          fix="choose a writable --out folder") from None
    spec = segmenter.spec
    run = segmenter.init_state(source)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {
        "status": "running", "started": started, "versions": _versions(),
        "model": spec.name, "input_size": list(spec.input_size), "window": spec.window_text(),
        "weights": str(segmenter.weights_path) if segmenter.weights_path else None,
        "weights_sha256": segmenter.weights_sha256, "device": str(segmenter.placement.device),
        "precision": segmenter.placement.precision, "threshold": segmenter.threshold, "batch": segmenter.batch,
        "compile": segmenter.compiled, "source": str(source.path), "probe": probe.to_json(),
        "outputs": {"masks": "masks/", "probs": "probs/" if opts.save_prob else None,
                    "overlay": "overlay.mp4" if opts.overlay else None, "frames_csv": "frames.csv"},
    }
    write_text_atomic(out_dir / "run.json", json.dumps(record, indent=2) + "\n")

    csv_path = out_dir / "frames.csv"
    csv_tmp = partial_path(csv_path)
    saved = read_rows(out_dir) if mode == "resume" else {}

    def written(name: str) -> bool:
        """The frame's PNGs are on disk (from an earlier run)."""
        return mode == "resume" and (masks_dir / f"{name}.png").is_file() and (
            not opts.save_prob or (probs_dir / f"{name}.png").is_file())

    answers: dict[str, bool] = {}  # the engine asks first (to plan); the loop below reuses the answer

    def finished(frame) -> bool:
        """Nothing left to do for this frame: its PNGs and its frames.csv row exist."""
        if frame.name not in answers:
            answers[frame.name] = frame.name in saved and written(frame.name)
        return answers[frame.name]

    overlay = None
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="png")
    pending: list[Future] = []
    report = VideoReport(source.name, out_dir, "complete")
    t_start = time.perf_counter()
    try:
        if opts.overlay:
            overlay = _OverlayWriter(out_dir / "overlay.mp4", probe.fps, (probe.width, probe.height),
                                     probe.frame_count, spec.name, segmenter.threshold, run.timings)
        with open(csv_tmp, "w", newline="") as fh:
            rows = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            rows.writeheader()
            for result in segmenter.run(source, run, skip=finished if saved else None):
                is_finished = finished(result)
                answers.pop(result.name, None)  # asked once per frame: keep the memo small
                if is_finished:
                    row = saved[result.name]
                    report.reused_masks += 1
                    if overlay is not None and not result.predicted:  # drawn again from the mask on disk
                        mask = read_mask(masks_dir / f"{result.name}.png").array > 0
                        result = replace(result, mask=mask, max_prob=float(row["max_prob"]))
                    present = row["present"] == "1"
                else:
                    if written(result.name):
                        report.reused_masks += 1
                    else:
                        pending.append(pool.submit(_write_pngs, masks_dir / f"{result.name}.png", result.mask,
                                                   probs_dir / f"{result.name}.png" if opts.save_prob else None,
                                                   result.prob, run.timings))
                    row = frame_row(result)
                    present = bool(result.mask.any())
                while len(pending) > PNG_INFLIGHT or (pending and pending[0].done()):
                    pending.pop(0).result()  # re-raises write errors (disk full)
                rows.writerow(row)
                if overlay is not None:
                    overlay.put(result)
                report.frames += 1
                report.frames_with_polyp += present
                if on_frame is not None:
                    on_frame(result)
        for f in pending:
            f.result()
        pending.clear()
        if overlay is not None:
            overlay.close()
            overlay = None
        os.replace(csv_tmp, csv_path)
    except BaseException:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
        if overlay is not None:
            overlay.abort()
        _keep_finished_rows(out_dir, masks_dir, probs_dir if opts.save_prob else None)
        raise
    pool.shutdown(wait=True)
    report.seconds = time.perf_counter() - t_start
    if source.truncation is not None:
        report.warnings.append(source.truncation.message(str(source.path)))
    record.update({
        "status": "complete", "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "frames": report.frames, "frames_with_polyp": report.frames_with_polyp,
        "truncated": None if source.truncation is None else {"decoded": source.truncation.decoded,
                                                             "expected": source.truncation.expected},
        "resumed_with_existing_masks": report.reused_masks,
        "frames_computed": run.frames_computed,
        "timings_seconds": {**run.timings.as_dict(), "total": round(report.seconds, 4)},
        "frames_per_second": round(report.frames / report.seconds, 3) if report.seconds else None,
        "notes": [n for n in (segmenter.placement.note, segmenter.batch_note) if n] + report.warnings,
    })
    write_text_atomic(out_dir / "run.json", json.dumps(record, indent=2) + "\n")
    return report


def _keep_finished_rows(out_dir: Path, masks_dir: Path, probs_dir: Path | None) -> None:
    """After an interrupt: keep, in ``frames.csv``, the rows (of this run and of earlier ones) of
    the frames whose PNGs are on disk — what ``--resume`` continues from — and remove the partial
    file. Best effort: if the disk is full the rows are lost, and a resumed run predicts those
    frames again."""
    csv_path = out_dir / "frames.csv"
    try:
        rows = [r for r in read_rows(out_dir).values() if (masks_dir / f"{r['name']}.png").is_file()
                and (probs_dir is None or (probs_dir / f"{r['name']}.png").is_file())]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: int(r["index"])))
        write_text_atomic(csv_path, out.getvalue())
    except OSError:
        pass
    finally:
        partial_path(csv_path).unlink(missing_ok=True)


def _write_pngs(mask_path: Path, mask: np.ndarray, prob_path: Path | None, prob: np.ndarray, timings) -> None:
    """One frame's mask (and probability) PNGs; takes the arrays, not the frame, to hold less memory."""
    t0 = time.perf_counter()
    write_mask(mask_path, mask)
    if prob_path is not None:
        write_levels(prob_path, prob)
    timings.add("png", time.perf_counter() - t0)


def segment_many(segmenter: Segmenter, sources: list, opts: SegmentOptions,
                 on_start: Callable | None = None, on_frame: Callable | None = None,
                 on_done: Callable | None = None) -> tuple[list[VideoReport], dict[str, VpsError]]:
    """Segment every source; a failing input does not stop the others.

    Returns the reports of the finished/skipped inputs and the errors of the failed ones.
    """
    reports, failures = [], {}
    for source in sources:
        if on_start is not None:
            on_start(source)
        try:
            report = segment_video(segmenter, source, opts, on_frame=on_frame)
        except VpsError as e:
            failures[str(source.path)] = e
            if on_done is not None:
                on_done(source, None, e)
            continue
        reports.append(report)
        if on_done is not None:
            on_done(source, report, None)
    return reports, failures
