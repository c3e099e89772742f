"""Per-video outputs of ``vps segment``, written while the video streams.

``OUT/<name>/``:

- ``masks/<frame>.png``: 8-bit 0/255 at the source resolution (``000123`` for videos, the
  frame's own name for frame folders);
- ``probs/<frame>.png`` (``save_prob``): ``floor(255·p)``;
- ``overlay.mp4`` (``overlay``): H.264, the source's fps and frame count;
- ``frames.csv``: index, name, timestamp, present, area fraction, max probability, bounding box,
  ``flagged`` (the model's mask at the threshold has a pixel) and ``suppressed`` (flagged, but emptied
  by the persistence filter);
- ``run.json``: versions, model, weights sha256, device, precision, threshold, input probe,
  the source's fingerprint, what the numbers depend on (``numerics``: torch build, CPU kernels,
  threads, device, precision, batch), timings per stage, and ``status`` (see
  :mod:`vpscli.io.run_record`): ``complete``; ``partial`` when the source ended early (a truncated
  file: only its decodable frames have outputs); ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``
  (with the error) when the run stopped; ``running`` while it runs; ``min_persistence`` and the
  ``false_alarm_summary`` (:class:`~vpscli.episodes.FlagSummary`).

The persistence filter (``min_persistence`` N): a frame the model flags keeps its mask only when it
belongs to a run of at least N consecutive flagged frames; shorter runs are written as empty masks
(``present`` 0, ``suppressed`` 1). Probability maps (``probs/``) and ``max_prob`` stay the model's raw
output. A frame's run is decided at most N − 1 frames after it, so the writer holds back up to N − 1
frames (:class:`~vpscli.episodes.PersistenceFilter`); N = 1 holds none and writes what the model gives.
Frames still held at an interrupt or error are dropped, never written undecided: ``--resume`` predicts
them again, and rebuilds the filter's state from the ``flagged`` column of the rows already written, so
a resumed run writes the masks of an uninterrupted one.

Every file is written under a temporary name, checked and renamed: an interrupt or a full disk
leaves only whole files. A frame's ``frames.csv`` row is written (and flushed) only once its PNGs
are on disk, so even a killed run leaves rows that describe real files.

``resume`` skips finished videos and continues an unfinished one from its written frames: a frame
with whole mask (and probability) PNGs and its ``frames.csv`` row is not predicted again, and the
model runs only where outputs are missing, plus the frames it needs to rebuild its state exactly
(:meth:`~vpscli.models.base.ModelSpec.replay_frames`: none for PNS-Net/PNS+, 9 for CFFM's feature
cache, all earlier frames for AEN's clip memory). It refuses a folder made from another source
(fingerprint), model, input size, weights or threshold. The result is bit-identical to an
uninterrupted run on the same torch build, device, thread count, precision and batch size (equal
``numerics``); otherwise it agrees to float rounding, and ``run.json`` says so.

Finished work is never overwritten silently, and never lost to a failed redo: ``overwrite``
writes the new run beside the old (``.<name>.overwrite/``) and replaces the old only when the new
one has finished; if it fails or is interrupted, the old outputs stay as they were.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import queue
import shutil
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from vpscli import __version__
from vpscli.engine.segmenter import FrameResult, Segmenter, check_options
from vpscli.episodes import FlagSummary, PersistenceFilter, flag_summary
from vpscli.errors import InputError, OutputError, VpsError
from vpscli.io.atomic import output_error, partial_path, write_text_atomic
from vpscli.io.fingerprint import source_fingerprint
from vpscli.io.masks import is_complete_png, read_mask, write_levels, write_mask
from vpscli.io.run_record import FINISHED, RUN_JSON, read_run_record

CSV_COLUMNS = ("index", "name", "timestamp", "present", "area_fraction", "max_prob", "bbox_x", "bbox_y", "bbox_w",
               "bbox_h", "flagged", "suppressed")

#: ``vps segment --min-persistence``'s default, chosen on the validation clips (``benchmarks/bench_persistence.py``,
#: table in the README)
DEFAULT_MIN_PERSISTENCE = 6


def png_workers() -> int:
    """Threads encoding a video's PNGs (OpenCV's encoder releases the GIL): half the usable cores,
    2 to 8. A 1080p mask costs ~6 ms, so 8 threads keep up with ~1,000 frames/s of masks and
    probability maps; more would only compete with decoding and the overlay's encoder."""
    from vpscli.engine.device import usable_cpus

    return max(2, min(8, usable_cpus() // 2))


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


@dataclass
class SegmentOptions:
    """What to write. ``out_root/<source name>/`` receives one video's outputs."""

    out_root: Path = Path("vps-out")
    save_prob: bool = False
    overlay: bool = True
    resume: bool = False
    overwrite: bool = False
    #: shortest run of consecutive flagged frames whose masks are kept (1: every detection)
    min_persistence: int = DEFAULT_MIN_PERSISTENCE
    #: the user says the videos are polyp-free: flagged frames are false alarms (the summary's rates)
    expect_negative: bool = False


@dataclass
class VideoReport:
    """What happened to one input."""

    name: str
    out_dir: Path
    status: str  # complete | partial (the source ended early) | skipped
    frames: int = 0
    frames_with_polyp: int = 0
    seconds: float = 0.0
    reused_masks: int = 0
    warnings: list[str] = field(default_factory=list)
    #: flagged frames before and after the persistence filter, episodes (None when skipped)
    flags: FlagSummary | None = None


def frame_row(result: FrameResult, flagged: bool | None = None) -> dict:
    """The ``frames.csv`` row of one frame (bounding box of the mask, empty when no polyp); the
    engine's box and area are used when it gives them (a 1080p mask is not scanned again).
    ``flagged``: the model flagged the frame (default: its mask is not empty, i.e. not suppressed)."""
    mask = result.mask
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
    box = box if present else ("", "", "", "")
    return {"index": result.index, "name": result.name, "timestamp": f"{result.timestamp:.6f}",
            "present": int(present), "area_fraction": f"{area / mask.size:.6f}", "max_prob": f"{result.max_prob:.6f}",
            "bbox_x": box[0], "bbox_y": box[1], "bbox_w": box[2], "bbox_h": box[3],
            "flagged": int(flagged), "suppressed": int(flagged and not present)}


def row_flagged(row: dict) -> bool:
    """Whether the model flagged a frame, from its ``frames.csv`` row (rows written before the
    persistence filter existed have no ``flagged`` cell: their mask is the model's, so ``present``)."""
    flagged = row.get("flagged")
    return (flagged if flagged not in (None, "") else row["present"]) in ("1", 1)


def suppress(result: FrameResult) -> FrameResult:
    """``result`` with an empty mask (the persistence filter's decision); the probabilities stay raw."""
    return replace(result, mask=np.zeros_like(result.mask), mask_box=None, mask_area=0)


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


def _versions() -> dict:
    import cv2
    import torch

    from vpscli.io.ffmpeg import ffmpeg_version

    import av

    return {"vps": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "opencv": cv2.__version__, "av": av.__version__, "ffmpeg": ffmpeg_version(), "numpy": np.__version__}


class _OverlayWriter:
    """Renders overlay frames and feeds the H.264 writer on its own thread (bounded queue)."""

    def __init__(self, path: Path, fps, size: tuple[int, int], total: int, model: str, threshold: float, timings,
                 vfr: bool = False):
        from vpscli.io.writer import VideoWriter

        self.preset = overlay_preset()
        self.writer = VideoWriter(path, fps, size, preset=self.preset)
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
                img = draw_overlay(item.image, item.mask, style="both", palette=palette,
                                   box=item.mask_box if known else None, empty=area == 0)
                draw_hud(img, FrameInfo(item.index, self.total, item.timestamp, True, area / item.mask.size,
                                        item.max_prob, self.model, self.threshold))
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


def numerics(segmenter: Segmenter) -> dict:
    """What a bit-for-bit comparison of two runs depends on: torch build, CPU kernels, threads,
    device, precision and batch. Outputs are bit-identical for equal records (same machine type);
    otherwise they agree to float rounding."""
    import torch

    return {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "device": str(segmenter.placement.device), "precision": segmenter.placement.precision,
            "batch": segmenter.batch}


def _identity(segmenter: Segmenter, fingerprint: str, min_persistence: int) -> dict:
    """What must not change between a run and its ``--resume``: the source and what maps it to masks."""
    return {"source_fingerprint": fingerprint, "model": segmenter.spec.name,
            "input_size": list(segmenter.spec.input_size), "weights_sha256": segmenter.weights_sha256,
            "threshold": segmenter.threshold, "min_persistence": min_persistence}


def _check_same_run(out_dir: Path, record: dict, identity: dict) -> None:
    """Refuse to continue (or skip) an earlier run made from another source, model, weights, threshold or
    persistence filter."""
    if not record:
        raise OutputError("holds files but no readable run.json, so vps cannot tell what made them", path=out_dir,
                          fix="use --overwrite to replace them, or choose another --out")
    labels = {"source_fingerprint": "source file (size and content differ)", "model": "model",
              "input_size": "input size", "weights_sha256": "weights (sha256 differs)", "threshold": "threshold"}
    if "source_fingerprint" not in record:
        raise OutputError("was written by an older vps, which did not record its source's fingerprint, so vps "
                          "cannot tell whether it is this video's", path=out_dir,
                          fix="use --overwrite to redo it, or choose another --out")
    for key, label in labels.items():
        if record.get(key) != identity[key]:
            before = record.get("source") if key == "source_fingerprint" else record.get(key)
            raise OutputError(f"holds a run of another {label}: {before}", path=out_dir,
                              fix="use --overwrite to redo it with these settings, or choose another --out")
    # a run made before the filter existed wrote the model's masks unfiltered, as --min-persistence 1 does
    earlier_persistence = record.get("min_persistence", 1)
    if earlier_persistence != identity["min_persistence"]:
        raise OutputError(f"holds a run made with --min-persistence {earlier_persistence}", path=out_dir,
                          fix=f"pass --min-persistence {earlier_persistence} to continue it, or use --overwrite to "
                              f"redo it with {identity['min_persistence']}")


def _prepare(out_dir: Path, opts: SegmentOptions, identity: dict) -> tuple[str, dict]:
    """Decide what to do with ``out_dir``: ``fresh``, ``resume``, ``skip`` or ``replace`` (``--overwrite``
    of existing outputs: written beside them, swapped in only when the new run is finished).
    Returns the mode and the earlier run's record."""
    if not (out_dir.exists() and any(out_dir.iterdir())):
        return "fresh", {}
    if opts.overwrite:
        return "replace", {}
    record = read_run_record(out_dir)
    finished = record.get("status") in FINISHED
    if opts.resume:
        _check_same_run(out_dir, record, identity)
        return ("skip" if finished else "resume"), record
    if finished:
        raise OutputError(f"already segmented (run.json says {record['status']})", path=out_dir,
                          fix="use --resume to skip finished videos, or --overwrite to redo them")
    raise OutputError("holds an unfinished run", path=out_dir,
                      fix="use --resume to continue it, or --overwrite to start again")


def _staging_dir(out_dir: Path) -> Path:
    """Where ``--overwrite`` writes a new run before it replaces ``out_dir`` (hidden: no command
    takes it for a result)."""
    return out_dir.with_name(f".{out_dir.name}.overwrite")


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``staging`` run: the old outputs go only once the new are whole."""
    old = out_dir.with_name(f".{out_dir.name}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    try:
        os.replace(out_dir, old)
        os.replace(staging, out_dir)
    except OSError as e:
        if old.exists() and not out_dir.exists():
            os.replace(old, out_dir)  # put the earlier outputs back
        raise output_error(out_dir, e) from None
    shutil.rmtree(old, ignore_errors=True)


def _check_writable(folder: Path, create: bool) -> None:
    """``folder`` is a folder that takes files (made first when ``create``), or a one-line error."""
    if folder.exists() and not folder.is_dir():
        raise OutputError("is a file, not a folder", path=folder, fix="remove it, or choose another --out")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OutputError(f"cannot write in this folder ({e.strerror or e})", path=folder,
                          fix="make it writable, or choose another --out") from None


def _make_writable(folders: list[Path]) -> None:
    """Create the output folders and prove each takes a file, before any frame is decoded."""
    for folder in folders:
        _check_writable(folder, create=True)


def check_output_root(out_root: str | Path) -> None:
    """The output root (or, when it does not exist yet, the folder it will be made in) takes files:
    checked before a model is loaded, and without creating anything."""
    folder = Path(out_root).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    _check_writable(folder, create=False)


def _finish_record(out_dir: Path, record: dict, **fields) -> bool:
    """Write the run's final status to run.json; False when that failed (the disk may be full: the
    status of a run that could not say it stays ``running``, which ``--resume`` treats alike)."""
    record.update(fields, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    try:
        write_text_atomic(out_dir / RUN_JSON, json.dumps(record, indent=2) + "\n")
    except (OSError, VpsError):
        return False
    return True


def segment_video(segmenter: Segmenter, source, opts: SegmentOptions,
                  on_frame: Callable[[FrameResult], None] | None = None) -> VideoReport:
    """Segment one source into ``opts.out_root/<source.name>/`` (see the module doc).

    ``on_frame`` is called after each frame's outputs are queued (progress bars) — with the
    persistence filter's decision applied, so up to ``min_persistence − 1`` frames after the model
    produced it.
    """
    check_options(min_persistence=opts.min_persistence)
    final_dir = Path(opts.out_root) / source.name
    try:
        identity = _identity(segmenter, source_fingerprint(source), opts.min_persistence)
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror or e})", path=source.path, fix="check the path") from None
    mode, earlier = _prepare(final_dir, opts, identity)
    if mode == "skip":
        return VideoReport(source.name, final_dir, "skipped")
    probe = source.probe()  # unreadable inputs fail here, before any folder is made
    out_dir = _staging_dir(final_dir) if mode == "replace" else final_dir
    if mode == "replace":
        shutil.rmtree(out_dir, ignore_errors=True)  # left by an earlier --overwrite that was killed
    masks_dir, probs_dir = out_dir / "masks", out_dir / "probs"
    _make_writable([out_dir, masks_dir] + ([probs_dir] if opts.save_prob else []))
    spec = segmenter.spec
    now = numerics(segmenter)
    notes = [n for n in (segmenter.placement.note, segmenter.batch_note) if n]
    if mode == "resume" and earlier.get("numerics") not in (None, now):
        changed = [k for k in now if earlier["numerics"].get(k) != now[k]]
        notes.append(f"resumed with another {', '.join(changed)} than the earlier run: frames computed now agree "
                     "with an uninterrupted run to float rounding, not bit for bit")
    record = {
        "status": "running", "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(), "numerics": now, **identity,
        "backbone": spec.backbone, "window": spec.window_text(), "weights": str(segmenter.weights_path) if segmenter.weights_path else None,
        "device": str(segmenter.placement.device), "precision": segmenter.placement.precision,
        "batch": segmenter.batch, "compile": segmenter.compiled, "source": str(source.path),
        "probe": probe.to_json(),
        "outputs": {"masks": "masks/", "probs": "probs/" if opts.save_prob else None,
                    "overlay": "overlay.mp4" if opts.overlay else None, "frames_csv": "frames.csv"},
        "overlay_preset": overlay_preset() if opts.overlay else None,
    }
    write_text_atomic(out_dir / RUN_JSON, json.dumps(record, indent=2) + "\n")
    run = segmenter.init_state(source)
    report = VideoReport(source.name, final_dir, "complete")
    t_start = time.perf_counter()
    try:
        _stream(segmenter, source, run, out_dir, opts, probe, report, on_frame, resume=mode == "resume")
    except KeyboardInterrupt:
        _finish_record(out_dir, record, status="interrupted", frames=report.frames)
        if mode == "replace":
            shutil.rmtree(out_dir, ignore_errors=True)  # the earlier outputs stay as they were
        raise
    except BaseException as e:
        message = e.one_line() if isinstance(e, VpsError) else f"{type(e).__name__}: {e}"
        _finish_record(out_dir, record, status="failed", error=message, frames=report.frames)
        if mode == "replace":
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    report.seconds = time.perf_counter() - t_start
    truncation = source.truncation
    if truncation is not None:
        report.status = "partial"
        report.warnings.append(truncation.message(str(source.path)))
    record.update({
        "status": report.status, "frames": report.frames, "frames_with_polyp": report.frames_with_polyp,
        "partial": None if truncation is None else {
            "frames_expected": truncation.expected, "frames_decoded": truncation.decoded,
            "reason": f"decoding stopped at frame {truncation.decoded} of {truncation.expected} (the file is "
                      "truncated or damaged)"},
        "resumed_with_existing_masks": report.reused_masks,
        "false_alarm_summary": report.flags.to_json() if report.flags is not None else None,
        "frames_computed": run.frames_computed,
        "timings_seconds": {**run.timings.as_dict(), "total": round(report.seconds, 4)},
        "frames_per_second": round(report.frames / report.seconds, 3) if report.seconds else None,
        "notes": notes + report.warnings,
    })
    if not _finish_record(out_dir, record):
        raise OutputError("cannot record the finished run in run.json", path=out_dir / RUN_JSON,
                          fix="free disk space and run the same command with --resume")
    if mode == "replace":
        _swap_in(out_dir, final_dir)
    return report


def _stream(segmenter: Segmenter, source, run, out_dir: Path, opts: SegmentOptions, probe, report: VideoReport,
            on_frame, resume: bool) -> None:
    """Run the model over ``source``, pass every frame through the persistence filter, and write
    every frame's outputs once the filter has decided it (the body of :func:`segment_video`).

    Frames the filter still holds when the run stops are dropped with it (``--resume`` predicts
    them again); a finished frame's ``flagged`` cell feeds the filter as the model's flag would, so
    a resumed run decides every frame as an uninterrupted one.
    """
    sink = _FrameSink(segmenter, run, out_dir, opts, report, on_frame, resume)
    # frames travel through the filter as (result, finished earlier, flagged by the model)
    persistence: PersistenceFilter[tuple[FrameResult, bool, bool]] = PersistenceFilter(opts.min_persistence)
    try:
        sink.open(probe)
        for result in segmenter.run(source, run, skip=sink.finished if sink.saved else None):
            is_finished = sink.finished(result, forget=True)
            flagged = row_flagged(sink.saved[result.name]) if is_finished else _flagged(result)
            for (decided, was_finished, was_flagged), kept in persistence.push((result, is_finished, flagged),
                                                                               flagged):
                sink.emit(decided, was_finished, was_flagged, kept)
        for (decided, was_finished, was_flagged), kept in persistence.finish():
            sink.emit(decided, was_finished, was_flagged, kept)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    report.flags = flag_summary(sink.flagged, sink.kept, float(probe.fps), opts.expect_negative)


class _FrameSink:
    """One video's outputs while it streams: PNGs on a pool, ``frames.csv`` rows in frame order, the
    overlay, the report's counts — fed by :meth:`emit` with frames the persistence filter has decided.

    A frame's ``frames.csv`` row is written, and flushed, only once its PNGs are on disk, so a
    killed run (``kill -9``, power cut aside) leaves rows that ``--resume`` can trust.
    """

    def __init__(self, segmenter: Segmenter, run, out_dir: Path, opts: SegmentOptions, report: VideoReport,
                 on_frame, resume: bool):
        self.segmenter, self.run, self.out_dir, self.opts = segmenter, run, out_dir, opts
        self.report, self.on_frame, self.resume = report, on_frame, resume
        self.masks_dir, self.probs_dir = out_dir / "masks", out_dir / "probs"
        self.saved = read_rows(out_dir) if resume else {}
        self._answers: dict[str, bool] = {}  # the engine asks first (to plan); the loop reuses the answer
        self.overlay: _OverlayWriter | None = None
        self.workers = png_workers()
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="png")
        self.pending: deque[tuple[Future | None, dict]] = deque()  # frames in order: PNG job, frames.csv row
        self.rows: _RowFile | None = None
        self.flagged: list[bool] = []  # per frame written, in order: the model flagged it / its mask is kept
        self.kept: list[bool] = []

    def open(self, probe) -> None:
        if self.opts.overlay:
            self.overlay = _OverlayWriter(self.out_dir / "overlay.mp4", probe.fps, (probe.width, probe.height),
                                          probe.frame_count, self.segmenter.spec.name, self.segmenter.threshold,
                                          self.run.timings, vfr=probe.vfr)
        self.rows = _RowFile(self.out_dir / "frames.csv")

    def written(self, name: str) -> bool:
        """The frame's PNGs are on disk, whole (from an earlier run)."""
        return self.resume and is_complete_png(self.masks_dir / f"{name}.png") and (
            not self.opts.save_prob or is_complete_png(self.probs_dir / f"{name}.png"))

    def finished(self, frame, forget: bool = False) -> bool:
        """Nothing left to do for this frame: its PNGs and its frames.csv row exist. ``forget``: the
        last question about this frame (keeps the memo small)."""
        if frame.name not in self._answers:
            self._answers[frame.name] = frame.name in self.saved and self.written(frame.name)
        return self._answers.pop(frame.name) if forget else self._answers[frame.name]

    def flush_rows(self, keep: int) -> None:
        """Write the rows whose PNGs are on disk, in frame order, until at most ``keep`` are pending."""
        pending = self.pending
        while pending and (len(pending) > keep or pending[0][0] is None or pending[0][0].done()):
            job, row = pending.popleft()
            if job is not None:
                job.result()  # re-raises a failed write (disk full) at once
            self.rows.write(row)

    def emit(self, result: FrameResult, is_finished: bool, flagged: bool, kept: bool) -> None:
        """Write one frame the filter has decided: its PNGs (unless on disk already), row, overlay frame."""
        job = None
        if is_finished:
            row = self.saved[result.name]
            self.report.reused_masks += 1
            if self.overlay is not None and not result.predicted:  # drawn again from the mask on disk
                mask = read_mask(self.masks_dir / f"{result.name}.png").array > 0
                result = replace(result, mask=mask, max_prob=float(row["max_prob"]))
            present = row["present"] == "1"
        else:
            if flagged and not kept:
                result = suppress(result)
            if self.written(result.name):
                self.report.reused_masks += 1
            else:
                job = self.pool.submit(_write_pngs, self.masks_dir / f"{result.name}.png", result.mask,
                                       self.probs_dir / f"{result.name}.png" if self.opts.save_prob else None,
                                       result.prob, self.run.timings)
            row = frame_row(result, flagged)
            present = row["present"] == 1
        self.pending.append((job, row))
        self.flush_rows(2 * self.workers)  # PNG writes in flight: bounds memory (each holds a frame's maps)
        if self.overlay is not None:
            self.overlay.put(result)
        self.report.frames += 1
        self.report.frames_with_polyp += present
        self.flagged.append(flagged)
        self.kept.append(present)
        if self.on_frame is not None:
            self.on_frame(result)

    def close(self) -> None:
        """Every frame emitted: the last rows, the overlay, ``frames.csv`` renamed into place."""
        self.flush_rows(0)
        if self.overlay is not None:
            self.overlay.close()
            self.overlay = None
        self.rows.commit()
        self.pool.shutdown(wait=True)

    def abort(self) -> None:
        """After an error or interrupt: keep the rows of the frames whose PNGs reached the disk."""
        for job, _ in self.pending:
            if job is not None:
                job.cancel()
        self.pool.shutdown(wait=True)
        if self.overlay is not None:
            self.overlay.abort()
        if self.rows is not None:
            _salvage_rows(self.pending, self.rows)
            self.rows.discard()
        _keep_finished_rows(self.out_dir, self.masks_dir, self.probs_dir if self.opts.save_prob else None)


def _flagged(result: FrameResult) -> bool:
    """The model flagged the frame: its mask at the threshold has a pixel."""
    return result.mask_area > 0 if result.mask_area is not None else bool(result.mask.any())


def _salvage_rows(pending: deque, rows: "_RowFile") -> None:
    """After an error or interrupt: the rows of the frames whose PNG writes did finish, in order
    (best effort), so that ``--resume`` keeps every frame that reached the disk."""
    for job, row in pending:
        if job is not None and (job.cancelled() or job.exception() is not None):
            break
        try:
            rows.write(row)
        except VpsError:
            break


class _RowFile:
    """``frames.csv`` being written: under its temporary name, each row flushed as it is written,
    renamed into place by :meth:`commit`. Every OS error is the one-line "disk full"/"cannot write"."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._fh = open(partial_path(path), "w", newline="")
            self._csv = csv.DictWriter(self._fh, fieldnames=CSV_COLUMNS)
            self._csv.writeheader()
        except OSError as e:
            raise output_error(path, e) from None

    def write(self, row: dict) -> None:
        try:
            self._csv.writerow(row)
            self._fh.flush()  # on disk (in the OS) now: a killed run keeps it
        except OSError as e:
            raise output_error(self.path, e) from None

    def commit(self) -> None:
        try:
            self._fh.close()
            os.replace(partial_path(self.path), self.path)
        except OSError as e:
            raise output_error(self.path, e) from None

    def discard(self) -> None:
        """Close after an error (the rows stay in the temporary file for :func:`_keep_finished_rows`)."""
        try:
            self._fh.close()
        except OSError:
            pass


def _keep_finished_rows(out_dir: Path, masks_dir: Path, probs_dir: Path | None) -> None:
    """After an interrupt: keep, in ``frames.csv``, the rows (of this run and of earlier ones) of
    the frames whose PNGs are on disk — what ``--resume`` continues from — and remove the partial
    file; then remove the PNGs that have no row (an interrupt can land between a PNG write and its
    row: such a frame is predicted again by ``--resume`` anyway), so that the folder's rows and PNGs
    describe the same frames. Best effort: if the disk is full the rows are lost (and the PNGs kept),
    and a resumed run predicts those frames again."""
    csv_path = out_dir / "frames.csv"
    try:
        rows = [r for r in read_rows(out_dir).values() if is_complete_png(masks_dir / f"{r['name']}.png")
                and (probs_dir is None or is_complete_png(probs_dir / f"{r['name']}.png"))]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: int(r["index"])))
        write_text_atomic(csv_path, out.getvalue())
        kept = {f"{r['name']}.png" for r in rows}
        for folder in (masks_dir, probs_dir):
            if folder is not None and folder.is_dir():
                for png in folder.glob("*.png"):
                    if png.name not in kept:
                        png.unlink(missing_ok=True)
    except (OSError, VpsError):
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
                 on_done: Callable | None = None, jobs: int = 1) -> tuple[list[VideoReport], dict[str, VpsError]]:
    """Segment every source; a failing input does not stop the others.

    ``jobs`` videos run at once, each in its own thread with its own state, outputs and (on CUDA)
    stream, sharing the model: while one video decodes or writes, another's clips keep the device
    busy. Each video's frames go through exactly the computation of a one-at-a-time run.
    Callbacks (called from the video's thread): ``on_start(source)``, ``on_frame(source, result)``,
    ``on_done(source, report | None, error | None)``. On Ctrl-C or SIGTERM every running video
    stops at its next frame and is recorded ``interrupted``; then the interrupt is re-raised.

    Returns the reports of the finished/skipped inputs (in input order) and the errors of the failed ones.
    """
    from vpscli.engine.device import job_stream

    check_options(jobs=jobs, min_persistence=opts.min_persistence)
    stop = threading.Event()
    results: dict[int, VideoReport] = {}
    failures: dict[str, VpsError] = {}

    def one(i: int, source) -> None:
        def frame_done(result):
            if stop.is_set():  # another video was interrupted: stop here, as at a Ctrl-C
                raise KeyboardInterrupt
            if on_frame is not None:
                on_frame(source, result)

        if stop.is_set():
            return
        if on_start is not None:
            on_start(source)
        try:
            with job_stream(segmenter.placement):
                report = segment_video(segmenter, source, opts, on_frame=frame_done)
        except VpsError as e:
            failures[str(source.path)] = e
            if on_done is not None:
                on_done(source, None, e)
            return
        results[i] = report
        if on_done is not None:
            on_done(source, report, None)

    if jobs == 1:
        for i, source in enumerate(sources):
            one(i, source)
    else:
        _run_concurrently(one, sources, jobs, stop)
    return [results[i] for i in sorted(results)], failures


def _run_concurrently(one: Callable, sources: list, jobs: int, stop: threading.Event) -> None:
    """``one(i, source)`` for every source on ``jobs`` threads. The main thread waits in short steps
    (signals are handled there); on an interrupt it tells the videos to stop, waits for them to
    record it, and re-raises it. A worker's unexpected error is re-raised the same way."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="video") as pool:
        futures = [pool.submit(one, i, s) for i, s in enumerate(sources)]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()  # a worker's interrupt or bug: stop the others too
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            wait(futures)
            raise
