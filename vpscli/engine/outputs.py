"""Per-video outputs of ``vps segment``, written while the video streams.

``OUT/<name>/``:

- ``masks/<frame>.png``: 8-bit 0/255 at the source resolution (``000123`` for videos, the
  frame's own name for frame folders);
- ``probs/<frame>.png`` (``save_prob``): ``floor(255·p)``;
- ``overlay.mp4`` (``overlay``): H.264, the source's fps and frame count;
- ``frames.csv``: index, name, timestamp, present, area fraction, max probability, bounding box;
- ``run.json``: versions, model, weights sha256, device, precision, threshold, input probe,
  the source's fingerprint, what the numbers depend on (``numerics``: torch build, CPU kernels,
  threads, device, precision, batch), timings per stage, and ``status`` (see
  :mod:`vpscli.io.run_record`): ``complete``; ``partial`` when the source ended early (a truncated
  file: only its decodable frames have outputs); ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``
  (with the error) when the run stopped; ``running`` while it runs.

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
from vpscli.errors import InputError, OutputError, VpsError
from vpscli.io.atomic import output_error, partial_path, write_text_atomic
from vpscli.io.fingerprint import source_fingerprint
from vpscli.io.masks import is_complete_png, read_mask, write_levels, write_mask
from vpscli.io.run_record import FINISHED, RUN_JSON, read_run_record

CSV_COLUMNS = ("index", "name", "timestamp", "present", "area_fraction", "max_prob", "bbox_x", "bbox_y", "bbox_w",
               "bbox_h")


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


def frame_row(result: FrameResult) -> dict:
    """The ``frames.csv`` row of one frame (bounding box of the mask, empty when no polyp); the
    engine's box and area are used when it gives them (a 1080p mask is not scanned again)."""
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
    box = box if present else ("", "", "", "")
    return {"index": result.index, "name": result.name, "timestamp": f"{result.timestamp:.6f}",
            "present": int(present), "area_fraction": f"{area / mask.size:.6f}", "max_prob": f"{result.max_prob:.6f}",
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


def _identity(segmenter: Segmenter, fingerprint: str) -> dict:
    """What must not change between a run and its ``--resume``: the source and what maps it to masks."""
    return {"source_fingerprint": fingerprint, "model": segmenter.spec.name,
            "input_size": list(segmenter.spec.input_size), "weights_sha256": segmenter.weights_sha256,
            "threshold": segmenter.threshold}


def _check_same_run(out_dir: Path, record: dict, identity: dict) -> None:
    """Refuse to continue (or skip) an earlier run made from another source, model, weights or threshold."""
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

    ``on_frame`` is called after each frame's outputs are queued (progress bars).
    """
    final_dir = Path(opts.out_root) / source.name
    try:
        identity = _identity(segmenter, source_fingerprint(source))
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
    """Run the model over ``source`` and write every frame's outputs (the body of :func:`segment_video`).

    A frame's ``frames.csv`` row is written, and flushed, only once its PNGs are on disk, so a
    killed run (``kill -9``, power cut aside) leaves rows that ``--resume`` can trust.
    """
    masks_dir, probs_dir = out_dir / "masks", out_dir / "probs"
    csv_path = out_dir / "frames.csv"
    saved = read_rows(out_dir) if resume else {}

    def written(name: str) -> bool:
        """The frame's PNGs are on disk, whole (from an earlier run)."""
        return resume and is_complete_png(masks_dir / f"{name}.png") and (
            not opts.save_prob or is_complete_png(probs_dir / f"{name}.png"))

    answers: dict[str, bool] = {}  # the engine asks first (to plan); the loop below reuses the answer

    def finished(frame) -> bool:
        """Nothing left to do for this frame: its PNGs and its frames.csv row exist."""
        if frame.name not in answers:
            answers[frame.name] = frame.name in saved and written(frame.name)
        return answers[frame.name]

    overlay = None
    workers = png_workers()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="png")
    pending: deque[tuple[Future | None, dict]] = deque()  # frames in order: PNG job, frames.csv row
    rows: _RowFile | None = None

    def flush_rows(keep: int) -> None:
        """Write the rows whose PNGs are on disk, in frame order, until at most ``keep`` are pending."""
        while pending and (len(pending) > keep or pending[0][0] is None or pending[0][0].done()):
            job, row = pending.popleft()
            if job is not None:
                job.result()  # re-raises a failed write (disk full) at once
            rows.write(row)

    try:
        if opts.overlay:
            overlay = _OverlayWriter(out_dir / "overlay.mp4", probe.fps, (probe.width, probe.height),
                                     probe.frame_count, segmenter.spec.name, segmenter.threshold, run.timings,
                                     vfr=probe.vfr)
        rows = _RowFile(csv_path)
        for result in segmenter.run(source, run, skip=finished if saved else None):
            is_finished = finished(result)
            answers.pop(result.name, None)  # asked once per frame: keep the memo small
            job = None
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
                    job = pool.submit(_write_pngs, masks_dir / f"{result.name}.png", result.mask,
                                      probs_dir / f"{result.name}.png" if opts.save_prob else None,
                                      result.prob, run.timings)
                row = frame_row(result)
                present = row["present"] == 1
            pending.append((job, row))
            flush_rows(2 * workers)  # PNG writes in flight: bounds memory (each holds a frame's maps)
            if overlay is not None:
                overlay.put(result)
            report.frames += 1
            report.frames_with_polyp += present
            if on_frame is not None:
                on_frame(result)
        flush_rows(0)
        if overlay is not None:
            overlay.close()
            overlay = None
        rows.commit()
    except BaseException:
        for job, _ in pending:
            if job is not None:
                job.cancel()
        pool.shutdown(wait=True)
        if overlay is not None:
            overlay.abort()
        if rows is not None:
            _salvage_rows(pending, rows)
            rows.discard()
        _keep_finished_rows(out_dir, masks_dir, probs_dir if opts.save_prob else None)
        raise
    pool.shutdown(wait=True)


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

    check_options(jobs=jobs)
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
