"""Per-video outputs of ``vps segment``, written while the video streams.

:func:`segment_video` decides what to do with the output folder (:class:`~vpscli.io.run_folder.RunFolder`,
the one definition of its layout, names and status), then wires source → segmenter → persistence
filter → sinks: :class:`MaskPngSink`, :class:`OverlaySink` and :class:`FramesCsvSink` receive every
decided frame (:class:`DecidedFrame`), :class:`RunRecordSink` keeps ``run.json``. A library caller
may replace or extend the frame sinks (``segment_video(..., sinks=...)``).

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

import os
import platform
import queue
import shutil
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from vpscli import __version__
from vpscli.engine.segmenter import FrameResult, Segmenter, check_options
from vpscli.episodes import (
    DEFAULT_MIN_PERSISTENCE,
    FlagSummary,
    PersistenceFilter,
    edge_warning,
    flag_summary,
)
from vpscli.errors import InputError, OutputError, VpsError
from vpscli.io.atomic import output_error
from vpscli.io.fingerprint import source_fingerprint
from vpscli.io.lock import OutputLock
from vpscli.io.masks import read_mask, write_levels, write_mask
from vpscli.io.run_folder import (
    CSV_COLUMNS,  # noqa: F401  (the frames.csv columns, read here by callers)
    FRAMES_CSV,
    MASKS,
    OVERLAY,
    PROBS,
    RowWriter,
    RunFolder,
)


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
    """What to write. ``out_root/<source name>/`` receives one video's outputs.

    Example: ``segment_video(Segmenter("pns-plus"), open_source("a.mp4"), SegmentOptions("out", overlay=False))``.
    """

    out_root: Path = Path("vps-out")
    save_prob: bool = False
    overlay: bool = True
    resume: bool = False
    overwrite: bool = False
    #: shortest run of consecutive flagged frames whose masks are kept (1: every detection)
    min_persistence: int = DEFAULT_MIN_PERSISTENCE
    #: the user says the videos are polyp-free: flagged frames are false alarms (the summary's rates)
    expect_negative: bool = False
    #: the frame decision: a frame is flagged when its peak probability reaches this level (at least the
    #: threshold; a frame below it gets an empty mask); ``None``: when its mask at the threshold has a pixel
    presence: float | None = None


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
    #: which model and weights made the outputs: ``pns-plus 38675ad126c2`` (empty when skipped)
    weights: str = ""


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
    return {
        "index": result.index,
        "name": result.name,
        "timestamp": f"{result.timestamp:.6f}",
        "present": int(present),
        "area_fraction": f"{area / mask.size:.6f}",
        "max_prob": f"{result.max_prob:.6f}",
        "bbox_x": box[0],
        "bbox_y": box[1],
        "bbox_w": box[2],
        "bbox_h": box[3],
        "flagged": int(flagged),
        "suppressed": int(flagged and not present),
    }


def _has_mask(result: FrameResult) -> bool:
    return result.mask_area > 0 if result.mask_area is not None else bool(result.mask.any())


def suppress(result: FrameResult) -> FrameResult:
    """``result`` with an empty mask (the persistence filter's decision); the probabilities stay raw."""
    return replace(result, mask=np.zeros_like(result.mask), mask_box=None, mask_area=0)


def _versions() -> dict:
    import av
    import cv2
    import torch

    from vpscli.io.ffmpeg import ffmpeg_version

    return {
        "vps": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "av": av.__version__,
        "ffmpeg": ffmpeg_version(),
        "numpy": np.__version__,
    }


class _OverlayWriter:
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


def weights_tag(segmenter: Segmenter) -> str:
    """The model and its weights' sha256 prefix (``pns-plus 38675ad126c2``), as the summary table and the
    overlay's HUD show them; ``untrained`` for a network run without weights."""
    sha = segmenter.weights_sha256
    return f"{segmenter.spec.name} {sha[:12] if sha else 'untrained'}"


def numerics(segmenter: Segmenter) -> dict:
    """What a bit-for-bit comparison of two runs depends on: torch build, CPU kernels, threads,
    device, precision and batch. Outputs are bit-identical for equal records (same machine type);
    otherwise they agree to float rounding."""
    import torch

    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "device": str(segmenter.placement.device),
        "precision": segmenter.placement.precision,
        "batch": segmenter.batch,
    }


def _identity(segmenter: Segmenter, source, min_persistence: int, presence: float | None = None) -> dict:
    """What must not change between a run and its ``--resume``: the source and what maps it to masks."""
    try:
        fingerprint = source_fingerprint(source)
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror or e})", path=source.path, fix="check the path") from None
    return {
        "source_fingerprint": fingerprint,
        "model": segmenter.spec.name,
        "input_size": list(segmenter.spec.input_size),
        "weights_sha256": segmenter.weights_sha256,
        "threshold": segmenter.threshold,
        "min_persistence": min_persistence,
        "tta": segmenter.tta,
        "presence": presence,
    }


def _check_same_run(out_dir: Path, record: dict, identity: dict) -> None:
    """Refuse to continue (or skip) an earlier run made from another source, model, weights, threshold or
    persistence filter."""
    if not record:
        raise OutputError(
            "holds files but no readable run.json, so vps cannot tell what made them",
            path=out_dir,
            fix="use --overwrite to replace them, or choose another --out",
        )
    labels = {
        "source_fingerprint": "source file (size and content differ)",
        "model": "model",
        "input_size": "input size",
        "weights_sha256": "weights (sha256 differs)",
        "threshold": "threshold",
    }
    if "source_fingerprint" not in record:
        raise OutputError(
            "was written by an older vps, which did not record its source's fingerprint, so vps "
            "cannot tell whether it is this video's",
            path=out_dir,
            fix="use --overwrite to redo it, or choose another --out",
        )
    for key, label in labels.items():
        if record.get(key) != identity[key]:
            before = record.get("source") if key == "source_fingerprint" else record.get(key)
            raise OutputError(
                f"holds a run of another {label}: {before}",
                path=out_dir,
                fix="use --overwrite to redo it with these settings, or choose another --out",
            )
    if record.get("presence") != identity["presence"]:
        earlier = record.get("presence")
        raise OutputError(
            f"holds a run made {'with --presence ' + str(earlier) if earlier is not None else 'without --presence'}",
            path=out_dir,
            fix="use the same frame decision to continue it, or --overwrite to redo it",
        )
    if record.get("tta", False) != identity["tta"]:
        said = "with" if record.get("tta", False) else "without"
        raise OutputError(
            f"holds a run made {said} --tta (test-time augmentation)",
            path=out_dir,
            fix=f"{'add' if said == 'with' else 'drop'} --tta to continue it, or use --overwrite to redo it",
        )
    # a run made before the filter existed wrote the model's masks unfiltered, as --min-persistence 1 does
    earlier_persistence = record.get("min_persistence", 1)
    if earlier_persistence != identity["min_persistence"]:
        raise OutputError(
            f"holds a run made with --min-persistence {earlier_persistence}",
            path=out_dir,
            fix=f"pass --min-persistence {earlier_persistence} to continue it, or use --overwrite to "
            f"redo it with {identity['min_persistence']}",
        )


def _prepare(folder: RunFolder, opts: SegmentOptions, identity: dict) -> tuple[str, dict]:
    """Decide what to do with ``folder``: ``fresh``, ``resume``, ``skip`` or ``replace`` (``--overwrite``
    of existing outputs: written beside them, swapped in only when the new run is finished).
    Returns the mode and the earlier run's record."""
    if folder.is_empty():
        return "fresh", {}
    if not folder.holds_outputs():  # never replaced, not even by --overwrite: they are not vps's to delete
        raise OutputError(
            "holds other files, not a vps run (no run.json, masks/ or frames.csv)",
            path=folder.path,
            fix="move them away, or choose another --out (each video is written to <out>/<video name>/)",
        )
    if opts.overwrite:
        return "replace", {}
    record = folder.record()
    finished = RunFolder.is_finished(record)
    if record.get("status") == "failed" and not folder.rows():
        return (
            "replace",
            {},
        )  # a failed run that wrote no frame is no work to keep: redo it, whatever the source
    if opts.resume:
        _check_same_run(folder.path, record, identity)
        return ("skip" if finished else "resume"), record
    if finished:
        raise OutputError(
            f"already segmented (run.json says {record['status']})",
            path=folder.path,
            fix="use --resume to skip finished videos, or --overwrite to redo them",
        )
    raise OutputError(
        "holds an unfinished run",
        path=folder.path,
        fix="use --resume to continue it, or --overwrite to start again",
    )


def _inherit_outputs(opts: SegmentOptions, earlier: dict) -> tuple[SegmentOptions, str | None]:
    """A resumed run writes every output the run it continues was writing (``probs/``, the overlay), so
    that its outputs cover every frame whatever flags the resuming command was given; the note says so."""
    outputs = earlier.get("outputs") or {}
    kept = []
    if outputs.get("probs") and not opts.save_prob:
        opts, kept = replace(opts, save_prob=True), kept + ["--save-prob"]
    if outputs.get("overlay") and not opts.overlay:
        opts, kept = replace(opts, overlay=True), kept + ["the overlay"]
    if not kept:
        return opts, None
    return opts, f"resumed with {' and '.join(kept)} as the run was started, so its outputs cover every frame"


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
        raise OutputError(
            f"cannot write in this folder ({e.strerror or e})",
            path=folder,
            fix="make it writable, or choose another --out",
        ) from None


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


def _output_folder(final_dir: Path, mode: str, opts: SegmentOptions) -> RunFolder:
    """The folder this run writes (beside ``final_dir`` for ``--overwrite``), its folders made and proved
    writable before any frame is decoded."""
    out_dir = _staging_dir(final_dir) if mode == "replace" else final_dir
    if mode == "replace":
        shutil.rmtree(out_dir, ignore_errors=True)  # left by an earlier --overwrite that was killed
    folder = RunFolder(out_dir)
    _make_writable([out_dir, folder.masks_dir] + ([folder.probs_dir] if opts.save_prob else []))
    return folder


def _run_fields(
    segmenter: Segmenter, source, probe, opts: SegmentOptions, identity: dict, mode: str, earlier: dict
) -> tuple[dict, list[str]]:
    """The record of a starting run (``run.json`` while it runs), and the notes its final record will carry."""
    spec = segmenter.spec
    now = numerics(segmenter)
    notes = [n for n in (segmenter.placement.note, segmenter.batch_note) if n]
    if mode == "resume" and earlier.get("numerics") not in (None, now):
        changed = [k for k in now if earlier["numerics"].get(k) != now[k]]
        notes.append(
            f"resumed with another {', '.join(changed)} than the earlier run: frames computed now agree "
            "with an uninterrupted run to float rounding, not bit for bit"
        )
    record = {
        "status": "running",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "numerics": now,
        **identity,
        "backbone": spec.backbone,
        "window": spec.window_text(),
        "weights": str(segmenter.weights_path) if segmenter.weights_path else None,
        "device": str(segmenter.placement.device),
        "precision": segmenter.placement.precision,
        "batch": segmenter.batch,
        "compile": segmenter.compiled,
        "source": str(source.path),
        "probe": probe.to_json(),
        "outputs": {
            "masks": f"{MASKS}/",
            "probs": f"{PROBS}/" if opts.save_prob else None,
            "overlay": OVERLAY if opts.overlay else None,
            "frames_csv": FRAMES_CSV,
        },
        "overlay_preset": overlay_preset() if opts.overlay else None,
    }
    return record, notes


#: ``sinks`` of :func:`segment_video`: makes a video's frame outputs from ``(folder, segmenter, run, opts)``
SinkFactory = Callable[[RunFolder, Segmenter, object, SegmentOptions], "list[Sink]"]


def segment_video(
    segmenter: Segmenter,
    source,
    opts: SegmentOptions,
    on_frame: Callable[[FrameResult], None] | None = None,
    sinks: SinkFactory | None = None,
) -> VideoReport:
    """Segment one source into ``opts.out_root/<source.name>/`` (see the module doc): decide what to do
    with the folder, then wire source → segmenter → persistence filter → sinks.

    ``on_frame`` is called after each frame's outputs are queued (progress bars) — with the
    persistence filter's decision applied, so up to ``min_persistence − 1`` frames after the model
    produced it.

    ``sinks(folder, segmenter, run, opts) -> list[Sink]`` makes the frame outputs (default
    :func:`default_sinks`: mask/probability PNGs, overlay, ``frames.csv``); ``run.json`` is always written
    (:class:`RunRecordSink`), since ``--resume``, ``--overwrite`` and the other commands go by it.
    """
    check_options(min_persistence=opts.min_persistence, threshold=segmenter.threshold, presence=opts.presence)
    final_dir = Path(opts.out_root) / source.name
    identity = _identity(segmenter, source, opts.min_persistence, opts.presence)
    with OutputLock(final_dir) as lock:  # one writer per video folder, decided and written under the lock
        return _segment_locked(segmenter, source, opts, final_dir, identity, on_frame, sinks, lock.note)


def _segment_locked(
    segmenter: Segmenter,
    source,
    opts: SegmentOptions,
    final_dir: Path,
    identity: dict,
    on_frame,
    sinks: "SinkFactory | None",
    lock_note: str | None,
) -> VideoReport:
    """:func:`segment_video` while holding the folder's lock (``lock_note``: a stale lock taken over)."""
    mode, earlier = _prepare(RunFolder(final_dir), opts, identity)
    opts, inherited = _inherit_outputs(opts, earlier) if mode == "resume" else (opts, None)
    if mode == "skip":
        return VideoReport(source.name, final_dir, "skipped")
    probe = source.probe()  # unreadable inputs fail here, before any folder is made
    folder = _output_folder(final_dir, mode, opts)
    run = segmenter.init_state(source)
    report = VideoReport(source.name, final_dir, "complete", weights=weights_tag(segmenter))
    fields, notes = _run_fields(segmenter, source, probe, opts, identity, mode, earlier)
    if inherited:  # the outputs differ from what this command asked for: said on the console and in run.json
        report.warnings.append(inherited)
    if lock_note:
        report.warnings.append(f"{final_dir}: {lock_note}")
    record = RunRecordSink(folder, fields, notes, report, run, source)
    record.open(probe)  # "running" before any other output exists
    t_start = time.perf_counter()
    try:
        frame_sinks = (sinks or default_sinks)(folder, segmenter, run, opts)
        _stream(
            segmenter,
            source,
            run,
            folder,
            frame_sinks,
            opts,
            probe,
            report,
            on_frame,
            resume=mode == "resume",
        )
    except BaseException as e:
        record.abort(e)
        if mode == "replace":
            shutil.rmtree(folder.path, ignore_errors=True)  # the earlier outputs stay as they were
        raise
    report.seconds = time.perf_counter() - t_start
    if source.truncation is not None:
        report.status = "partial"
        report.warnings.append(source.truncation.message(str(source.path)))
    record.close()
    if mode == "replace":
        _swap_in(folder.path, final_dir)
    return report


def _stream(
    segmenter: Segmenter,
    source,
    run,
    folder: RunFolder,
    sinks: list["Sink"],
    opts: SegmentOptions,
    probe,
    report: VideoReport,
    on_frame,
    resume: bool,
) -> None:
    """Run the model over ``source``, pass every frame through the persistence filter, and hand every
    frame it has decided to the ``sinks`` (opened first, closed last; all aborted on an error).

    Frames the filter still holds when the run stops are dropped with it (``--resume`` predicts
    them again); a finished frame's ``flagged`` cell feeds the filter as the model's flag would, so
    a resumed run decides every frame as an uninterrupted one.
    """
    frames = _FrameDecider(
        folder, resume, opts.save_prob, needs_masks=any(s.needs_masks for s in sinks), presence=opts.presence
    )
    flagged_by_model: list[bool] = []  # per frame written, in order: the model flagged it / its mask is kept
    kept_masks: list[bool] = []
    # frames travel through the filter as (result, finished earlier, flagged by the model)
    persistence: PersistenceFilter[tuple[FrameResult, bool, bool]] = PersistenceFilter(opts.min_persistence)

    def emit(decided) -> None:
        for (result, was_finished, flagged), kept in decided:
            frame = frames.decide(result, was_finished, flagged, kept)
            for sink in sinks:
                sink.write(frame)
            report.frames += 1
            report.frames_with_polyp += frame.present
            report.reused_masks += frame.on_disk
            flagged_by_model.append(flagged)
            kept_masks.append(frame.present)
            if on_frame is not None:
                on_frame(frame.result)

    try:
        for sink in sinks:
            sink.open(probe)
        for result in segmenter.run(source, run, skip=frames.skip):
            was_finished = frames.is_finished(result)
            flagged = frames.flagged(result, was_finished)
            emit(persistence.push((result, was_finished, flagged), flagged))
        emit(persistence.finish())
        for sink in sinks:
            sink.close()
    except BaseException as e:
        for sink in sinks:
            sink.abort(e)
        raise
    report.flags = flag_summary(flagged_by_model, kept_masks, float(probe.fps), opts.expect_negative)
    edge = edge_warning(flagged_by_model, kept_masks, opts.min_persistence)
    if edge:
        report.warnings.append(edge)


class _FrameDecider:
    """What a resumed run already has, and the :class:`DecidedFrame` the sinks get for each frame.

    A frame finished by the earlier run (:meth:`RunFolder.finished`: whole PNGs and a ``frames.csv`` row)
    is not predicted again (``skip``); its row stands for it. Decided once, before the first frame.
    """

    def __init__(
        self,
        folder: RunFolder,
        resume: bool,
        save_prob: bool,
        needs_masks: bool,
        presence: float | None = None,
    ):
        self.folder, self.resume, self.save_prob, self.needs_masks = folder, resume, save_prob, needs_masks
        self.presence = presence
        self.saved = folder.rows() if resume else {}
        self.finished = folder.finished(save_prob, self.saved) if self.saved else set()
        #: the engine's ``skip``: given only when there are earlier rows (else every frame is predicted)
        self.skip = (lambda frame: frame.name in self.finished) if self.saved else None

    def is_finished(self, result: FrameResult) -> bool:
        return result.name in self.finished

    def flagged(self, result: FrameResult, was_finished: bool) -> bool:
        """The model flagged the frame: its mask at the threshold has a pixel and, with a presence level, its
        peak probability reaches it (a finished frame: its row says)."""
        if was_finished:
            return RunFolder.row_flagged(self.saved[result.name])
        return _has_mask(result) and (self.presence is None or result.max_prob >= self.presence)

    def decide(self, result: FrameResult, was_finished: bool, flagged: bool, kept: bool) -> "DecidedFrame":
        if was_finished:
            row = self.saved[result.name]
            if self.needs_masks and not result.predicted:  # drawn again from the mask on disk
                mask = read_mask(self.folder.mask_path(result.name)).array > 0
                result = replace(result, mask=mask, max_prob=float(row["max_prob"]))
            return DecidedFrame(result, row, flagged, row["present"] == "1", finished=True, on_disk=True)
        if (flagged and not kept) or (
            not flagged and _has_mask(result)
        ):  # the filter's, or the frame decision's
            result = suppress(result)
        row = frame_row(result, flagged)
        on_disk = self.resume and self.folder.has_pngs(result.name, self.save_prob)
        return DecidedFrame(result, row, flagged, row["present"] == 1, finished=False, on_disk=on_disk)


@dataclass
class DecidedFrame:
    """One frame the persistence filter has decided, as every sink receives it, in frame order.

    Attributes:
        result: the frame; its ``mask`` is the kept mask (empty when the filter suppressed it). A frame
            finished by an earlier run and not predicted again has ``mask``/``prob`` ``None``, unless a
            sink ``needs_masks``: its mask is then read back from ``masks/`` and ``max_prob`` from its row.
        row: its ``frames.csv`` row (the earlier run's, all strings, for a finished frame).
        flagged: the model flagged it (before the filter).
        present: its kept mask has a pixel.
        finished: finished by an earlier run (PNGs and row on disk).
        on_disk: its PNGs are on disk already (finished, or written before an interrupt): not written again.
        png_job: the PNG write in flight, set by :class:`MaskPngSink` (``None``: nothing to wait for).
    """

    result: FrameResult
    row: dict
    flagged: bool
    present: bool
    finished: bool
    on_disk: bool
    png_job: Future | None = None


class Sink(ABC):
    """Where decided frames go: :meth:`open` before the first, :meth:`write` each in frame order, then
    :meth:`close` after the last — or :meth:`abort` after an error or interrupt (possibly before
    :meth:`open`, or after :meth:`close`). Example: ``segment_video(seg, src, opts, sinks=lambda *a:
    default_sinks(*a) + [MySink()])``."""

    #: frames finished by an earlier run reach this sink with their masks read back from disk
    needs_masks = False

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


def default_sinks(folder: RunFolder, segmenter: Segmenter, run, opts: SegmentOptions) -> list[Sink]:
    """The outputs of ``vps segment``: PNGs, the overlay (``opts.overlay``) and ``frames.csv`` — in this
    order, since a frame's row waits for its PNGs (:attr:`DecidedFrame.png_job`)."""
    sinks: list[Sink] = [MaskPngSink(folder, opts.save_prob, run.timings)]
    if opts.overlay:
        sinks.append(OverlaySink(folder, weights_tag(segmenter), segmenter.threshold, run.timings))
    sinks.append(FramesCsvSink(folder, opts.save_prob))
    return sinks


class MaskPngSink(Sink):
    """``masks/<name>.png`` (and ``probs/<name>.png`` when ``save_prob``) on a pool of :func:`png_workers`
    threads; at most twice as many writes in flight, which bounds memory (each holds a frame's maps)."""

    def __init__(self, folder: RunFolder, save_prob: bool, timings):
        self.folder, self.save_prob, self.timings = folder, save_prob, timings
        self.workers = png_workers()
        self.pool: ThreadPoolExecutor | None = None
        self.in_flight: deque[Future] = deque()

    def open(self, probe) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="png")

    def write(self, frame: DecidedFrame) -> None:
        if frame.on_disk:
            return
        result, folder = frame.result, self.folder
        frame.png_job = self.pool.submit(
            _write_pngs,
            folder.mask_path(result.name),
            result.mask,
            folder.prob_path(result.name) if self.save_prob else None,
            result.prob,
            self.timings,
        )
        self.in_flight.append(frame.png_job)
        while self.in_flight and (len(self.in_flight) > 2 * self.workers or self.in_flight[0].done()):
            self.in_flight.popleft().result()  # re-raises a failed write (disk full) at once

    def close(self) -> None:
        while self.in_flight:
            self.in_flight.popleft().result()
        self.pool.shutdown(wait=True)

    def abort(self, error: BaseException | None = None) -> None:
        for job in self.in_flight:
            job.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class OverlaySink(Sink):
    """``overlay.mp4``: every frame drawn with its mask and HUD, encoded on its own thread."""

    needs_masks = True

    def __init__(self, folder: RunFolder, model: str, threshold: float, timings):
        self.path, self.model, self.threshold, self.timings = folder.overlay_path, model, threshold, timings
        self.writer: _OverlayWriter | None = None

    def open(self, probe) -> None:
        self.writer = _OverlayWriter(
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
        self.writer.put(frame.result)

    def close(self) -> None:
        writer, self.writer = self.writer, None
        writer.close()

    def abort(self, error: BaseException | None = None) -> None:
        if self.writer is not None:
            self.writer.abort()


class FramesCsvSink(Sink):
    """``frames.csv``: one row per frame, in frame order, each written (and flushed) only once the frame's
    PNGs are on disk, so a killed run (``kill -9``, power cut aside) leaves rows that ``--resume`` can trust."""

    def __init__(self, folder: RunFolder, save_prob: bool):
        self.folder, self.save_prob = folder, save_prob
        self.rows: RowWriter | None = None
        self.pending: deque[tuple[Future | None, dict]] = deque()  # frames in order: PNG job, frames.csv row

    def open(self, probe) -> None:
        self.rows = self.folder.open_rows()

    def write(self, frame: DecidedFrame) -> None:
        self.pending.append((frame.png_job, frame.row))
        self._flush(wait=False)

    def _flush(self, wait: bool) -> None:
        """Write the rows whose PNGs are on disk, in frame order (``wait``: every row, waiting for its PNGs)."""
        pending = self.pending
        while pending and (wait or pending[0][0] is None or pending[0][0].done()):
            job, row = pending.popleft()
            if job is not None:
                job.result()  # re-raises a failed write (disk full) at once
            self.rows.write(row)

    def close(self) -> None:
        self._flush(wait=True)
        self.rows.commit()

    def abort(self, error: BaseException | None = None) -> None:
        """Keep the rows of the frames whose PNGs reached the disk (this run's and earlier ones'), and only
        their PNGs (:meth:`RunFolder.keep_finished_rows`)."""
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


class RunRecordSink(Sink):
    """``run.json``: ``running`` from :meth:`open`; :meth:`close` records the finished run (from the
    completed ``report``), :meth:`abort` an ``interrupted`` or ``failed`` one. Nothing per frame.

    Driven by :func:`segment_video` around the frame sinks: opened before them, closed and aborted after.
    """

    def __init__(self, folder: RunFolder, record: dict, notes: list[str], report: VideoReport, run, source):
        self.folder, self.record, self.notes, self.report, self.run, self.source = (
            folder,
            record,
            notes,
            report,
            run,
            source,
        )

    def open(self, probe) -> None:
        self.folder.write_record(self.record)

    def write(self, frame: DecidedFrame) -> None:
        pass

    def close(self) -> None:
        report, run, truncation = self.report, self.run, self.source.truncation
        self.record.update(
            {
                "status": report.status,
                "frames": report.frames,
                "frames_with_polyp": report.frames_with_polyp,
                "partial": None
                if truncation is None
                else {
                    "frames_expected": truncation.expected,
                    "frames_decoded": truncation.decoded,
                    "reason": f"decoding stopped at frame {truncation.decoded} of {truncation.expected} (the file is "
                    "truncated or damaged)",
                },
                "resumed_with_existing_masks": report.reused_masks,
                "false_alarm_summary": report.flags.to_json() if report.flags is not None else None,
                "frames_computed": run.frames_computed,
                "timings_seconds": {**run.timings.as_dict(), "total": round(report.seconds, 4)},
                "frames_per_second": round(report.frames / report.seconds, 3) if report.seconds else None,
                "notes": self.notes + report.warnings,
            }
        )
        if not self._finish():
            raise OutputError(
                "cannot record the finished run in run.json",
                path=self.folder.run_json,
                fix="free disk space and run the same command with --resume",
            )

    def abort(self, error: BaseException | None = None) -> None:
        if isinstance(error, KeyboardInterrupt):
            self._finish(status="interrupted", frames=self.report.frames)
        else:
            message = error.one_line() if isinstance(error, VpsError) else f"{type(error).__name__}: {error}"
            self._finish(status="failed", error=message, frames=self.report.frames)

    def _finish(self, **fields) -> bool:
        """Write the run's final status; False when that failed (the disk may be full: the status of a
        run that could not say it stays ``running``, which ``--resume`` treats alike)."""
        self.record.update(fields, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        try:
            self.folder.write_record(self.record)
        except (OSError, VpsError):
            return False
        return True


def _write_pngs(mask_path: Path, mask: np.ndarray, prob_path: Path | None, prob: np.ndarray, timings) -> None:
    """One frame's mask (and probability) PNGs; takes the arrays, not the frame, to hold less memory."""
    t0 = time.perf_counter()
    write_mask(mask_path, mask)
    if prob_path is not None:
        write_levels(prob_path, prob)
    timings.add("png", time.perf_counter() - t0)


def segment_many(
    segmenter: Segmenter,
    sources: list,
    opts: SegmentOptions,
    on_start: Callable | None = None,
    on_frame: Callable | None = None,
    on_done: Callable | None = None,
    jobs: int = 1,
) -> tuple[list[VideoReport], dict[str, VpsError]]:
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
