"""What ``vps segment`` shows of a batch: progress bars (:class:`LocalProgress`, :class:`RayProgress`) and the
one-line messages of :class:`ConsoleEvents` while :func:`vpscli.batch.runner.run_batch` runs, then the
summary table and the exit code (:func:`finish_with_summary`), or the interrupt's message.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from vpscli.batch.events import BatchEvents
from vpscli.cli.console import (
    err_console,
    input_failure_line,
    notice,
    print_table,
    running_line,
    warning_line,
)
from vpscli.errors import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL_INPUT,
    EXIT_TERMINATED,
    PartialFailure,
    Terminated,
    VpsError,
)


class ConsoleEvents(BatchEvents):
    """A batch's events on the console: warnings and failures always, notes unless ``quiet``, progress in
    ``view``."""

    def __init__(self, view: LocalProgress | RayProgress | None, quiet: bool):
        self.view, self.quiet = view, quiet

    def input_failed(self, error) -> None:
        input_failure_line(error)

    def video_failed(self, error) -> None:
        input_failure_line(error)

    def video_finished(self, report) -> None:
        for w in report.warnings:
            warning_line(w)
        alarm = false_alarm_warning(report)
        if alarm:
            warning_line(alarm)

    def warning(self, message: str) -> None:
        warning_line(message)

    def notice(self, message: str) -> None:
        notice(message, self.quiet)

    def running(self, message: str) -> None:
        running_line(message)

    def video_started(self, source) -> None:
        self.view.video_started(source)

    def frame_done(self, source, result) -> None:
        self.view.frame_done(source, result)

    def video_done(self, source) -> None:
        self.view.video_done(source)

    def progress(self, done: int, failed: int, frames: int) -> None:
        self.view.update(done, failed, frames)


def write_batch_summary(report, path: Path, backend: str, extra: dict) -> None:
    """``batch.json``, with a note when another batch's record stays beside it; a record that cannot be
    written is a warning: every video's own outputs are whole."""
    try:
        written = report.write_json(path, backend, extra)
        if written != path:
            notice(f"{path} holds another batch's record; this batch's is {written.name}")
    except (OSError, VpsError) as e:
        warning_line(f"{path}: could not write the batch summary ({e}); every video's run.json is in place")


class LocalProgress:
    """The local progress view: a bar per running video (frames, frames/s)."""

    def __init__(self, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.running: dict = {}  # source → (progress task, start time)
        self.view = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]:.1f} frames/s"),
            TimeRemainingColumn(),
            console=err_console,
            disable=quiet,
            transient=True,
        )

    def running_names(self) -> list[str]:
        return [s.name for s in self.running]

    def video_started(self, source) -> None:
        try:
            total = source.probe().frame_count
        except Exception:  # reported by segment_video
            total = None
        self.running[source] = (self.view.add_task(source.name, total=total, fps=0.0), time.perf_counter())

    def frame_done(self, source, result) -> None:
        task, t0 = self.running[source]
        done = result.index + 1
        elapsed = time.perf_counter() - t0
        self.view.update(task, completed=done, fps=done / elapsed if elapsed > 0 else 0.0)

    def video_done(self, source) -> None:
        self.view.remove_task(self.running.pop(source)[0])


class RayProgress:
    """The Ray progress view: one line for the batch — videos done and failed of all, frames/s overall."""

    def __init__(self, total: int, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.view = Progress(
            TextColumn("videos"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}  {task.fields[fps]:.1f} frames/s overall"),
            TimeElapsedColumn(),
            console=err_console,
            disable=quiet,
            transient=True,
        )
        self.task = self.view.add_task("videos", total=total, failed=0, fps=0.0)
        self.t0 = time.perf_counter()
        self.failed = 0

    def running_names(self) -> list[str]:
        return []

    def update(self, done: int, failed: int, frames: int) -> None:
        elapsed = time.perf_counter() - self.t0
        self.view.update(
            self.task, completed=done, failed=failed, fps=frames / elapsed if elapsed > 0 else 0.0
        )


def longest_run_text(summary) -> str:
    """``12 frames (0.48 s) from frame 40``, or ``-``."""
    run = summary.longest
    if run is None:
        return "-"
    seconds = summary.seconds(run.length)
    return (
        f"{run.length} frames"
        + (f" ({seconds:.2f} s)" if seconds is not None else "")
        + f" from frame {run.start}"
    )


def false_alarm_warning(report) -> str | None:
    """A warning for a video said to be polyp-free (``--expect-negative``) that still has flagged frames
    after the filter; ``None`` otherwise. Said even under ``--quiet``."""
    f = report.flags
    if f is None or not f.expect_negative or f.flagged_after == 0:
        return None
    per_minute = f.per_minute(f.episodes_after)
    rate = f" ({per_minute:.2f} per minute)" if per_minute is not None else ""
    return (
        f"{report.name}: {f.episodes_after} false-alarm episode(s){rate} on a video said to be polyp-free, "
        f"{f.flagged_after} of {f.frames} frames flagged after the persistence filter; longest: {longest_run_text(f)} "
        f"— see {report.out_dir}/frames.csv"
    )


def write_review_pages(reports, out: Path, is_batch: bool, quiet: bool) -> None:
    """``--report``: a review page per video written (skipped ones included: their outputs are whole), and an
    index for a batch. A page that cannot be written is a warning: the segmentation itself succeeded."""
    from vpscli.report import write_index, write_report

    folders = [r.out_dir for r in reports if (Path(r.out_dir) / "run.json").is_file()]
    for folder in folders:
        try:
            page = write_report(folder)
        except (OSError, VpsError) as e:
            warning_line(f"{folder}: no review page ({e})")
            continue
        notice(f"review page: {page}", quiet)
    if is_batch and folders:
        notice(f"index of the review pages: {write_index(out, folders)}", quiet)


def report_interrupt(e: KeyboardInterrupt, running: list[str], out: Path, overwrite: bool) -> None:
    """The interrupt's one message (what is kept, how to continue), then its exit code."""
    from rich.markup import escape

    name = ", ".join(escape(n) for n in running) or "the running videos"
    if overwrite:
        kept = (
            f"the earlier outputs of {name} in {out}/ are unchanged (--overwrite replaces them only once a run "
            "has finished); finished videos are kept — run the same command again to redo it"
        )
    else:
        kept = f"finished frames are kept in {out}/ — run the same command with --resume to continue"
    err_console.print(
        f"[red]{'terminated' if isinstance(e, Terminated) else 'interrupted'}[/] during {name}: " + kept,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED) from None


def finish_with_summary(reports: list, failures: dict, quiet: bool, expect_negative: bool) -> None:
    """The summary table, then the exit code: 3 when some inputs failed, 4 when some were partial."""
    if not quiet and reports:
        print_table(summary_table(reports, expect_negative))
    if failures:  # each was reported as it happened
        if not reports:
            raise typer.Exit(next(iter(failures.values())).exit_code)
        raise PartialFailure({k: e.message for k, e in failures.items()}, total=len(reports) + len(failures))
    partial = [r.name for r in reports if r.status == "partial"]
    if partial:  # told apart from failure: the outputs exist, but cover only part of these videos
        warning_line(
            f"{len(partial)} of {len(reports)} inputs were partial (the source ended early; outputs cover "
            f"its decodable frames, run.json says status partial): {', '.join(partial[:5])}"
            + (" ..." if len(partial) > 5 else "")
            + f" — exit code {EXIT_PARTIAL_INPUT}"
        )
        raise typer.Exit(EXIT_PARTIAL_INPUT)


def summary_table(reports, expect_negative: bool):
    """One row per video: status, frames, frames with a polyp mask (after the persistence filter) and
    flagged by the model (before it), episodes and the longest one after it, and — for videos said to
    be polyp-free — false alarms per minute."""
    from rich.markup import escape
    from rich.table import Table

    # "with polyp" counts the masks written (after the filter), as it always has; "flagged by model" beside it
    # shows what the filter removed
    columns = (
        [
            "input",
            "status",
            "weights",
            "frames",
            "with polyp",
            "flagged by model",
            "episodes",
            "longest episode",
        ]
        + (["false alarms/min"] if expect_negative else [])
        + ["frames/s", "output"]
    )
    t = Table(*columns)
    for r in reports:
        rate = f"{r.frames / r.seconds:.2f}" if r.seconds else "-"
        f = r.flags
        cells = [str(f.flagged_before), str(f.episodes_after), longest_run_text(f)] if f else ["-"] * 3
        if expect_negative:
            per_minute = f.per_minute(f.episodes_after) if f else None
            cells.append("-" if per_minute is None else f"{per_minute:.2f}")
        t.add_row(
            escape(r.name),
            r.status + (f" (kept {r.reused_masks} masks)" if r.reused_masks else ""),
            escape(r.weights) or "-",
            str(r.frames),
            str(r.frames_with_polyp),
            *cells,
            rate,
            escape(str(r.out_dir)),
        )
    return t
