"""``vps segment``: segment whole videos clip by clip — masks, probabilities, overlay, summary."""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from vpscli.cli.console import (err_console, error_line, notice, print_table, reports_errors,
                                sigterm_as_interrupt, warning_line)
from vpscli.engine.outputs import DEFAULT_MIN_PERSISTENCE
from vpscli.errors import (EXIT_INTERRUPTED, EXIT_PARTIAL_INPUT, EXIT_TERMINATED, PartialFailure, Terminated,
                           UsageError, VpsError)


@reports_errors
def segment(
    inputs: List[str] = typer.Argument(..., help="Video files, frame folders, SUN-SEG roots (Frame/<case>/) or globs."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="aen-cffm, cffm, pns-plus, aen-pns-plus, pns-net "
                                        "(default: the one --weights records, else the best with bundled weights)."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="Checkpoint file (default: bundled weights)."),
    out: Path = typer.Option(Path("vps-out"), "--out", "-o", help="Output root: OUT/<input name>/."),
    threshold: float = typer.Option(0.5, "--threshold", "-t", help="Probability at or above which a pixel is polyp."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32, bf16, fp16."),
    batch: int = typer.Option(1, "--batch", help="Clips per forward pass (models without clip-to-clip state)."),
    save_prob: bool = typer.Option(False, "--save-prob", help="Also write probability maps floor(255·p) to probs/."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Write overlay.mp4."),
    resume: bool = typer.Option(False, "--resume", help="Skip finished videos; continue unfinished ones."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo videos that already have outputs."),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model (slow start, faster run)."),
    compile_mode: Optional[str] = typer.Option(None, "--compile-mode", help="torch.compile mode: default, "
                                               "reduce-overhead (CUDA graphs: batch-1 stateful models), max-autotune; "
                                               "implies --compile."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads of the model on the CPU (default: "
                                          "the usable CPUs minus one, kept for decoding and writing; "
                                          "OMP_NUM_THREADS if set)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Frame rate of frame-folder inputs (default 25)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Videos segmented at once, sharing the model (each with "
                             "its own state and outputs; on CUDA each on its own stream)."),
    min_persistence: int = typer.Option(
        DEFAULT_MIN_PERSISTENCE, "--min-persistence", metavar="N",
        help="Keep a detection only when it lasts N consecutive frames or more; shorter ones are written as "
             "empty masks (probs/ and max_prob stay the model's raw output). 1 keeps every detection. Default 6, "
             "chosen on the validation clips with the bundled weights: it lost 4 of 116 detected GT-positive "
             "frames (3.4 %) of the CVC-ClinicDB valid clips and no polyp, and raised the clean PolypGen "
             "polyp-free frames from 23.6 % to 37.2 % (README: persistence table)."),
    expect_negative: bool = typer.Option(
        False, "--expect-negative", help="The videos are polyp-free: report every flagged frame as a false "
        "alarm (episodes per minute, longest episode) in the summary and run.json, with a warning when any is "
        "left after the filter."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    """Segment every frame of each input and write OUT/<name>/{masks/, probs/, overlay.mp4, frames.csv, run.json}.

    Masks are 8-bit 0/255 PNGs at the source resolution, named 000000.png (0-based frame index) for videos
    and by frame name for frame folders. Exit codes: 3 when some inputs failed and the others finished;
    4 when every input finished but some were partial (a truncated video: only its decodable frames);
    130 on Ctrl-C and 143 on SIGTERM (finished frames kept; --resume continues).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.markup import escape

    from vpscli.engine import Segmenter, SegmentOptions, segment_many
    from vpscli.engine.device import check_compile_mode, jobs_cpu_threads, model_cpu_threads, resolve_placement, set_cpu_threads
    from vpscli.engine.outputs import check_output_root
    from vpscli.engine.segmenter import check_options
    from vpscli.io.sources import discover_sources, distinct_names

    # every option is checked before any input is read, model loaded or file written
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    check_options(threshold=threshold, batch=batch, fps=fps, jobs=jobs, min_persistence=min_persistence)
    check_compile_mode(compile_mode)
    placement = resolve_placement(device, precision)
    model_threads = model_cpu_threads(threads)
    sources, failures = [], {}
    for text in inputs:  # a missing input fails alone; the others still run
        try:
            sources.extend(discover_sources([text], fps=fps))
        except VpsError as e:
            failures[text] = e
            error_line(e.one_line())
    if not sources:
        raise typer.Exit(next(iter(failures.values())).exit_code)
    sources = distinct_names(sources)  # across all inputs: dayA/x.mp4 and dayB/x.mp4 never share OUT/x
    if threads is None:  # videos segmented at once share the model's cores (--threads is taken as given)
        model_threads = jobs_cpu_threads(model_threads, min(jobs, len(sources)))
    check_output_root(out)
    if model is None:
        from vpscli.models.weights import default_model, read_metadata

        model = (read_metadata(weights).get("model") if weights is not None else None) or default_model()
    # deliberately, before the model runs: the model's threads and the pipeline's must not oversubscribe
    set_cpu_threads(model_threads if placement.device.type == "cpu" else None)
    seg = Segmenter(model, weights, device=device, precision=precision, threshold=threshold, batch=batch,
                    compile=compile_model, compile_mode=compile_mode)
    for note in (seg.placement.note, seg.batch_note, seg.weights_note):
        if note:
            notice(note, quiet)
    opts = SegmentOptions(out_root=out, save_prob=save_prob, overlay=overlay, resume=resume, overwrite=overwrite,
                          min_persistence=min_persistence, expect_negative=expect_negative)
    running: dict = {}  # source → (progress task, start time), for the videos in progress
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[fps]:.1f} frames/s"), TimeRemainingColumn(),
                        console=err_console, disable=quiet, transient=True)

    def on_start(source):
        try:
            total = source.probe().frame_count
        except Exception:  # reported by segment_video
            total = None
        running[source] = (progress.add_task(source.name, total=total, fps=0.0), time.perf_counter())

    def on_frame(source, result):
        task, t0 = running[source]
        done = result.index + 1
        elapsed = time.perf_counter() - t0
        progress.update(task, completed=done, fps=done / elapsed if elapsed > 0 else 0.0)

    def on_done(source, report, error):
        progress.remove_task(running.pop(source)[0])
        if error is not None:
            error_line(error.one_line())
        elif report is not None:
            for w in report.warnings:
                warning_line(w)
            alarm = false_alarm_warning(report)
            if alarm:
                warning_line(alarm)

    try:
        with sigterm_as_interrupt(), progress:
            reports, failed = segment_many(seg, sources, opts, on_start, on_frame, on_done, jobs=jobs)
        failures.update(failed)
    except KeyboardInterrupt as e:
        names = [escape(src.name) for src in running] or ["the current video"]
        name = ", ".join(names)
        if overwrite:
            kept = f"the earlier outputs of {name} in {out}/ are unchanged (--overwrite replaces them only once a run " \
                   "has finished); finished videos are kept — run the same command again to redo it"
        else:
            kept = f"finished frames are kept in {out}/ — run the same command with --resume to continue"
        err_console.print(f"[red]{'terminated' if isinstance(e, Terminated) else 'interrupted'}[/] during {name}: "
                          + kept, soft_wrap=True)
        raise typer.Exit(EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED) from None
    if not quiet and reports:
        print_table(summary_table(reports, expect_negative))
    if failures:  # each was reported as it happened
        if not reports:
            raise typer.Exit(next(iter(failures.values())).exit_code)
        raise PartialFailure({k: e.message for k, e in failures.items()}, total=len(reports) + len(failures))
    partial = [r.name for r in reports if r.status == "partial"]
    if partial:  # told apart from failure: the outputs exist, but cover only part of these videos
        warning_line(f"{len(partial)} of {len(reports)} inputs were partial (the source ended early; outputs cover "
                     f"its decodable frames, run.json says status partial): {', '.join(partial[:5])}"
                     + (" ..." if len(partial) > 5 else "") + f" — exit code {EXIT_PARTIAL_INPUT}")
        raise typer.Exit(EXIT_PARTIAL_INPUT)


def summary_table(reports, expect_negative: bool):
    """One row per video: status, frames, frames with a polyp mask (after the persistence filter) and
    flagged by the model (before it), episodes and the longest one after it, and — for videos said to
    be polyp-free — false alarms per minute."""
    from rich.markup import escape
    from rich.table import Table

    # "with polyp" counts the masks written (after the filter), as it always has; "flagged by model" beside it
    # shows what the filter removed
    columns = ["input", "status", "frames", "with polyp", "flagged by model", "episodes", "longest episode"] + (
        ["false alarms/min"] if expect_negative else []) + ["frames/s", "output"]
    t = Table(*columns)
    for r in reports:
        rate = f"{r.frames / r.seconds:.2f}" if r.seconds else "-"
        f = r.flags
        cells = [str(f.flagged_before), str(f.episodes_after), _longest(f)] if f else ["-"] * 3
        if expect_negative:
            per_minute = f.per_minute(f.episodes_after) if f else None
            cells.append("-" if per_minute is None else f"{per_minute:.2f}")
        t.add_row(escape(r.name), r.status + (f" (kept {r.reused_masks} masks)" if r.reused_masks else ""),
                  str(r.frames), str(r.frames_with_polyp), *cells, rate, escape(str(r.out_dir)))
    return t


def _longest(summary) -> str:
    """``12 frames (0.48 s) from frame 40``, or ``-``."""
    run = summary.longest
    if run is None:
        return "-"
    seconds = summary.seconds(run.length)
    return f"{run.length} frames" + (f" ({seconds:.2f} s)" if seconds is not None else "") + f" from frame {run.start}"


def false_alarm_warning(report) -> str | None:
    """A warning for a video said to be polyp-free (``--expect-negative``) that still has flagged frames
    after the filter; ``None`` otherwise. Said even under ``--quiet``."""
    f = report.flags
    if f is None or not f.expect_negative or f.flagged_after == 0:
        return None
    per_minute = f.per_minute(f.episodes_after)
    rate = f" ({per_minute:.2f} per minute)" if per_minute is not None else ""
    return (f"{report.name}: {f.episodes_after} false-alarm episode(s){rate} on a video said to be polyp-free, "
            f"{f.flagged_after} of {f.frames} frames flagged after the persistence filter; longest: {_longest(f)} "
            f"— see {report.out_dir}/frames.csv")


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
