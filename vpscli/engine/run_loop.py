"""``vps segment``'s spine: one source into ``OUT/<name>/``.

:func:`segment_video` takes the folder's lock, lets :meth:`RunFolder.decide <vpscli.io.run_folder.RunFolder.decide>`
choose what to do with it (fresh, resume, skip, or replace by ``--overwrite``), builds the
:class:`~vpscli.engine.resume.ResumePlan` once, then :func:`stream` runs source → segmenter →
persistence filter → sinks, and ``run.json`` records how it ended (:class:`~vpscli.engine.record.RecordKeeper`).

``OUT/<name>/``:

- ``masks/<frame>.png``: 8-bit 0/255 at the source resolution (``000123`` for videos, the
  frame's own name for frame folders);
- ``probs/<frame>.png`` (``save_prob``): ``floor(255·p)``;
- ``overlay.mp4`` (``overlay``): H.264, the source's fps and frame count;
- ``frames.csv``: index, name, timestamp, present, area fraction, max probability, bounding box,
  ``flagged`` (the model flagged the frame) and ``suppressed`` (flagged, but emptied by the persistence
  filter): :mod:`vpscli.engine.frame_decision`;
- ``run.json``: versions, model, weights sha256, device, precision, threshold, input probe, the source's
  fingerprint, what the numbers depend on (``numerics``), timings per stage, ``status``
  (:mod:`vpscli.io.run_record`), ``min_persistence`` and the ``false_alarm_summary``
  (:class:`~vpscli.episodes.FlagSummary`).

A frame's run of flagged frames is decided at most N − 1 frames after it (N: ``min_persistence``), so
the writer holds back up to N − 1 frames; frames still held at an interrupt or error are dropped, never
written undecided: ``--resume`` predicts them again.

Every file is written under a temporary name, checked and renamed: an interrupt or a full disk leaves
only whole files. ``resume`` refuses a folder made from another source, model, input size, weights or
threshold; its result is bit-identical to an uninterrupted run on the same torch build, device, thread
count, precision and batch size (equal ``numerics``), otherwise it agrees to float rounding, and
``run.json`` says so. ``overwrite`` replaces the old outputs only once the new run has finished.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from vpscli.engine.frame_decision import decide, frame_presence, model_flagged
from vpscli.engine.options import SegmentOptions, check_options
from vpscli.engine.overlay_sink import OverlaySink
from vpscli.engine.record import RecordKeeper, VideoReport, run_identity, starting_record, weights_tag
from vpscli.engine.resume import ResumePlan
from vpscli.engine.segmenter import Segmenter
from vpscli.engine.sinks import FrameFilesSink, Sink
from vpscli.engine.video_run import FrameResult, VideoRun
from vpscli.episodes import PersistenceFilter, edge_warning, flag_summary
from vpscli.io.lock import OutputLock
from vpscli.io.run_folder import RunFolder
from vpscli.io.run_record import RunRecord

#: ``sinks`` of :func:`segment_video`: a video's frame outputs from ``(folder, segmenter, run, opts, plan)``
SinkFactory = Callable[[RunFolder, Segmenter, VideoRun, SegmentOptions, ResumePlan], "list[Sink]"]


def segment_video(
    segmenter: Segmenter,
    source,
    opts: SegmentOptions,
    on_frame: Callable[[FrameResult], None] | None = None,
    sinks: SinkFactory | None = None,
) -> VideoReport:
    """Segment one source into ``opts.out_root/<source.name>/`` (see the module doc).

    ``on_frame`` is called after each frame's outputs are queued (progress bars) — with the
    persistence filter's decision applied, so up to ``min_persistence − 1`` frames after the model
    produced it; its ``prob`` is ``None`` unless a sink uses the probability maps (``Sink.uses_probs``).

    ``sinks(folder, segmenter, run, opts, plan) -> list[Sink]`` makes the frame outputs (default
    :func:`default_sinks`); ``run.json`` is always written, since ``--resume``, ``--overwrite`` and the
    other commands go by it.
    """
    check_options(min_persistence=opts.min_persistence, threshold=segmenter.threshold, presence=opts.presence)
    # one frame decision from here on (identity, run.json, flags): the weights' calibrated level unless given
    opts = replace(opts, presence=frame_presence(opts.presence, segmenter.card_presence, segmenter.threshold))
    final = RunFolder(Path(opts.out_root) / source.name)
    identity = run_identity(segmenter, source, opts)
    with OutputLock(final.path) as lock:  # one writer per video folder, decided and written under the lock
        mode, earlier = final.decide(identity, resume=opts.resume, overwrite=opts.overwrite)
        if mode == "skip":
            return VideoReport(source.name, final.path, "skipped")
        inherited = None
        if mode == "resume":
            assert earlier is not None, "a resumed run has the record it continues"
            opts, inherited = _inherit_outputs(opts, earlier)
        probe = source.probe()  # unreadable inputs fail here, before any folder is made
        folder = final.writing(mode, opts.save_prob)
        run = segmenter.init_state(source)
        report = VideoReport(source.name, final.path, "complete", weights=weights_tag(segmenter))
        # the outputs differ from what this command asked for: said on the console and in run.json
        if inherited:
            report.warnings.append(inherited)
        if lock.note:
            report.warnings.append(f"{final.path}: {lock.note}")
        record = RecordKeeper(
            folder, *starting_record(segmenter, source, probe, opts, identity, earlier), report, run
        )
        record.open()  # "running" before any other output exists
        t_start = time.perf_counter()
        try:
            plan = ResumePlan(folder, opts.save_prob, resume=mode == "resume")
            frame_sinks = (sinks or default_sinks)(folder, segmenter, run, opts, plan)
            run.probs = any(sink.uses_probs for sink in frame_sinks)  # probability maps only if written
            stream(segmenter, source, run, plan, frame_sinks, opts, probe, report, on_frame)
        except BaseException as e:
            record.abort(e)
            if mode == "replace":
                shutil.rmtree(folder.path, ignore_errors=True)  # the earlier outputs stay as they were
            raise
        report.seconds = time.perf_counter() - t_start
        if source.truncation is not None:
            report.status = "partial"
            report.warnings.append(source.truncation.message(str(source.path)))
        record.close(source.truncation)
        if mode == "replace":
            final.swap_in(folder)
        return report


def stream(
    segmenter: Segmenter,
    source,
    run: VideoRun,
    plan: ResumePlan,
    sinks: list[Sink],
    opts: SegmentOptions,
    probe,
    report: VideoReport,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> None:
    """Run the model over ``source`` (skipping what ``plan`` says is finished), pass every frame through the
    persistence filter, and hand every frame it has decided to the ``sinks`` (opened first, closed last;
    all aborted on an error). Counts frames, polyps and reused masks into ``report``."""
    flagged_by_model: list[bool] = []  # per frame written, in order: the model flagged it / its mask is kept
    kept_masks: list[bool] = []
    persistence: PersistenceFilter[tuple[FrameResult, bool]] = PersistenceFilter(opts.min_persistence)

    def emit(decided) -> None:
        for (result, flagged), kept in decided:
            frame = decide(plan, result, flagged, kept)
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
        for result in segmenter.run(source, run, skip=plan.skip):
            finished = plan.is_finished(result.name)
            flagged = plan.flagged(result.name) if finished else model_flagged(result, opts.presence)
            emit(persistence.push((result, flagged), flagged))
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


def default_sinks(
    folder: RunFolder, segmenter: Segmenter, run: VideoRun, opts: SegmentOptions, plan: ResumePlan
) -> list[Sink]:
    """The outputs of ``vps segment``: the frame files (PNGs and ``frames.csv``) and, with ``opts.overlay``,
    the overlay video."""
    sinks: list[Sink] = [FrameFilesSink(folder, opts.save_prob, run.timings)]
    if opts.overlay:
        sinks.append(OverlaySink(folder, plan, weights_tag(segmenter), segmenter.threshold, run.timings))
    return sinks


def _inherit_outputs(opts: SegmentOptions, earlier: RunRecord) -> tuple[SegmentOptions, str | None]:
    """A resumed run writes every output the run it continues was writing (``probs/``, the overlay), so
    that its outputs cover every frame whatever flags the resuming command was given; the note says so."""
    outputs = earlier.outputs
    kept: list[str] = []
    if outputs.get("probs") and not opts.save_prob:
        opts, kept = replace(opts, save_prob=True), kept + ["--save-prob"]
    if outputs.get("overlay") and not opts.overlay:
        opts, kept = replace(opts, overlay=True), kept + ["the overlay"]
    if not kept:
        return opts, None
    return opts, f"resumed with {' and '.join(kept)} as the run was started, so its outputs cover every frame"
