"""``vps evaluate``: score predicted maps against ground truth with the SUN-SEG / PNS-Net metric suite.

Parsing and reporting only; the computation lives in :mod:`vpscli.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vpscli.cli.console import err_console, notice, out_console, print_table, reports_errors, warning_line
from vpscli.errors import UsageError

#: Show a progress bar from this many frame evaluations on.
PROGRESS_MIN_FRAMES = 50


@reports_errors
def evaluate(
    pred: Path = typer.Argument(
        ..., help="Predictions: PRED/[<method>/][<split>/]<case>/<frame>.png (or vps segment output)."
    ),
    gt: Path = typer.Argument(
        ..., help="Ground truth: a GT/ folder of cases, a dataset root with <split>/GT/, or one case."
    ),
    metrics: Optional[str] = typer.Option(
        None,
        "--metrics",
        "-m",
        help="Comma-separated keys, 'all', 'published' or 'default' "
        "(default: Smeasure,meanEm,wFmeasure,meanFm,maxDice,meanSen,maxIoU,MAE).",
    ),
    keep_ends: bool = typer.Option(
        False, "--keep-ends", help="Keep the first and last frame of each sequence."
    ),
    sort: str = typer.Option(
        "auto",
        "--sort",
        help="Frame order before trimming: auto (toolbox: numeric, else SUN-SEG), legacy (pre-2025 SUN-SEG "
        "rule of the published tables), sunseg, natural, name.",
    ),
    per_sequence: bool = typer.Option(False, "--per-sequence", help="Also print a table per sequence."),
    json_path: Optional[str] = typer.Option(
        None, "--json", help="Write unrounded results as JSON ('-': stdout)."
    ),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write unrounded results as CSV."),
    plot_path: Optional[Path] = typer.Option(
        None, "--plot", help="Draw Dice/IoU/Sen/Spe/E/F and PR curves (PNG)."
    ),
    workers: int = typer.Option(
        0, "--workers", "-j", min=0, help="Processes (0: one per CPU for large sets)."
    ),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Score missing predictions as all-zero maps."
    ),
    matched_only: bool = typer.Option(
        False, "--matched-only", help="Leave out GT cases that have no predictions."
    ),
    method: Optional[List[str]] = typer.Option(
        None, "--method", help="Only these method folders (repeatable)."
    ),
    use_masks: bool = typer.Option(
        False,
        "--use-masks",
        help="Score masks/ of vps segment folders that also hold probs/ (default: probs/, the benchmark's input).",
    ),
    detection: bool = typer.Option(
        True,
        "--detection/--no-detection",
        help="Also report the per-video detection view: frame-level sensitivity and specificity, polyp episodes "
        "and time to first detection, false-alarm episodes per minute on polyp-free videos (every GT "
        "frame; a frame is detected when its predicted mask is non-empty).",
    ),
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        "-t",
        help="Detection view: binarise the scored maps at v/255 >= this (default: the masks/ of vps segment "
        "runs — their threshold and persistence filter — and 0.5 for other maps).",
    ),
    fps: Optional[float] = typer.Option(
        None,
        "--fps",
        help="Detection view: frame rate of the GT frames, for seconds and per-minute rates "
        "(default: the video's rate recorded by vps segment, else frames only).",
    ),
    ray: Optional[str] = typer.Option(
        None,
        "--ray",
        metavar="auto|local|ADDRESS",
        help="Score each sequence as a Ray task (pip install 'vps\\[ray]'; same numbers as a local run; "
        "--workers is then unused): auto joins the running cluster or starts one here, local starts one "
        "here, else a cluster address. Every worker must see PRED and GT at the same paths.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notes."),
) -> None:
    """Score predictions against ground truth exactly as the SUN-SEG benchmark toolbox does.

    GT > 128 is foreground; predictions are resized to the GT size and min-max normalised; each sequence drops its first and last frame; scores are averaged per sequence, then over sequences. Values match GewelsJI/VPS eval/ to 1e-9 on its inputs (8-bit grey PNGs); palette, 1-bit, 0/1, 16-bit and RGB masks are read as every vps command reads them, with a note. vps segment folders are scored from probs/ when present, else masks/.

    Then the detection view, per video: frame-level sensitivity and specificity (a frame is detected when its predicted mask is non-empty: masks/ of vps segment runs, after their persistence filter; other maps at --threshold), time to first detection of each polyp episode, false-alarm episodes per minute on videos whose GT is empty.
    """
    from vpscli.metrics import build_plan, default_workers, parse_metrics
    from vpscli.metrics.result_diagnostics import diagnose_detection, diagnose_result

    keys = parse_metrics(metrics)
    _check_options(sort, json_path, csv_path, plot_path, threshold, fps, ray)
    plan = build_plan(
        pred,
        gt,
        sort_rule=sort,
        keep_ends=keep_ends,
        allow_missing=allow_missing,
        matched_only=matched_only,
        methods=method or None,
        use_masks=use_masks,
        on_warning=warning_line,  # partial segment runs: said even under --quiet, and before any error
    )
    _print_matched(plan, quiet)
    for note in plan.diagnostics.notes:  # its warnings were said as they were found
        notice(note, quiet)

    n_jobs = plan.n_frames
    n_workers = workers or default_workers(n_jobs * len(plan.methods))
    extra = ("emeasure", "fmeasure", "medical") if plot_path is not None else ()
    result = _score(
        plan,
        keys,
        n_workers,
        extra,
        ray,
        show_progress=not quiet and n_jobs * len(plan.methods) >= PROGRESS_MIN_FRAMES,
    )
    _say(diagnose_result(result), quiet)

    view = None
    if detection:
        from vpscli.metrics.detection import detection_view

        view = detection_view(
            plan, threshold=threshold, fps=fps, workers=max(2, n_workers), known=result.flags
        )
        _say(diagnose_detection(view), quiet)

    tables_console = err_console if json_path == "-" else out_console
    _print_tables(result, tables_console, per_sequence)
    if view is not None:
        _print_detection(result, view, tables_console)
    _write_outputs(result, view, json_path, csv_path, plot_path, quiet)


def _check_options(sort, json_path, csv_path, plot_path, threshold, fps, ray) -> None:
    """Refuse bad option values and unwritable output files before any work: a wrong path must not cost the
    whole run, nor a missing Ray install."""
    import math

    from vpscli.io.atomic import check_file_target
    from vpscli.metrics.ordering import SORT_RULES

    if sort not in SORT_RULES:
        raise UsageError(f"unknown --sort {sort!r}", fix=f"use one of: {', '.join(SORT_RULES)}")
    if plot_path is not None and plot_path.suffix.lower() != ".png":
        raise UsageError("--plot writes a PNG file", path=plot_path, fix="give a file name ending in .png")
    if threshold is not None and not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise UsageError(
            f"--threshold must be in (0, 1], got {threshold}",
            fix="give the probability at or above which a pixel is polyp, e.g. --threshold 0.5",
        )
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= 1000):
        raise UsageError(
            f"--fps must be a frame rate in (0, 1000], got {fps}",
            fix="give the frame rate the GT frames were recorded at, e.g. --fps 25",
        )
    for option, target in (
        ("--json", json_path if json_path not in (None, "-") else None),
        ("--csv", csv_path),
        ("--plot", plot_path),
    ):
        if target is not None:
            check_file_target(target, option)
    if ray is not None:
        from vpscli.batch.ray_cluster import import_ray

        import_ray()  # a one-line error naming the extra when Ray is missing


def _say(diagnostics, quiet: bool) -> None:
    """Print each finding: a warning always, a note unless ``quiet``."""
    from vpscli.metrics.diagnostics import WARNING

    for diagnostic in diagnostics:
        if diagnostic.severity == WARNING:
            warning_line(diagnostic.text)
        else:
            notice(diagnostic.text, quiet)


def _write_outputs(result, view, json_path, csv_path, plot_path, quiet: bool) -> None:
    from vpscli.metrics import report

    if json_path is not None:
        text = report.write_json(result, json_path, view)
        if json_path == "-":
            out_console.print(text, markup=False, highlight=False)
    if csv_path is not None:
        report.write_csv(result, csv_path, view)
    if plot_path is not None:
        from vpscli.metrics.plot import write_plot

        write_plot(result, plot_path)
    for label, path in (("JSON", json_path), ("CSV", csv_path), ("plot", plot_path)):
        if path is not None and str(path) != "-":
            notice(f"{label} written to {path}", quiet)


def _score(plan, keys, n_workers: int, extra, ray: str | None, show_progress: bool):
    """Score the plan in this process (``n_workers`` processes) or, with ``ray``, one Ray task per sequence."""
    from vpscli.metrics import evaluate_plan

    started = False
    scorer = None
    if ray is not None:
        from vpscli.batch.ray_cluster import connect
        from vpscli.batch.ray_scoring import score_sequences

        started, scorer = connect(ray), score_sequences
    try:
        if not show_progress:
            return evaluate_plan(plan, keys, workers=n_workers, extra_families=extra, scorer=scorer)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task("frames", total=plan.n_frames)
            return evaluate_plan(
                plan,
                keys,
                workers=n_workers,
                extra_families=extra,
                scorer=scorer,
                on_frame=lambda n: progress.advance(task, n),
            )
    finally:
        if started:
            import ray as ray_module

            ray_module.shutdown()


def _print_matched(plan, quiet: bool) -> None:
    if quiet:
        return
    headline, *splits = plan.summary()
    err_console.print(f"[bold]matched[/] {headline}", soft_wrap=True)
    for line in splits:
        err_console.print(line, markup=False, soft_wrap=True)


def _print_tables(result, console, per_sequence: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from vpscli.metrics.report import format_value, protocol_line, split_label

    keys = result.metrics
    for split in result.plan.splits:
        methods = [m for m in result.plan.methods if (split.name, m) in result.datasets]
        if not methods:
            continue
        title = "Dataset " + split_label(split)
        table = Table(title=title, title_justify="left")
        table.add_column("Method")
        for key in keys:
            table.add_column(key, justify="right")
        for method in methods:
            dataset = result.datasets[(split.name, method)]
            label = "predictions" if method == "." else method
            table.add_row(escape(label), *(format_value(dataset.value(k)) for k in keys))
        print_table(table, console)
        if per_sequence:
            seq_table = Table(title=f"{title} — per sequence", title_justify="left")
            if len(methods) > 1:
                seq_table.add_column("Method")
            seq_table.add_column("Sequence")
            seq_table.add_column("frames", justify="right")
            for key in keys:
                seq_table.add_column(key, justify="right")
            for method in methods:
                for seq in result.sequences[(split.name, method)]:
                    cells = [seq.name, str(seq.n_frames), *(format_value(seq.value(k)) for k in keys)]
                    seq_table.add_row(*map(escape, ([method] if len(methods) > 1 else []) + cells))
            print_table(seq_table, console)
    console.print(protocol_line(result), style="dim", markup=False, soft_wrap=True)


def _print_detection(result, view, console) -> None:
    """One table per split: per video and pooled, what a clinician asks (see vpscli.metrics.detection)."""
    from rich.markup import escape
    from rich.table import Table

    from vpscli.metrics.detection_table import COLUMNS, LEFT_ALIGNED, detection_line, pooled_row, sequence_row
    from vpscli.metrics.report import split_label

    for split in result.plan.splits:
        methods = [m for m in result.plan.methods if (split.name, m) in view]
        if not methods:
            continue
        table = Table(title=f"Dataset {split_label(split)} — detection per video", title_justify="left")
        if len(methods) > 1:
            table.add_column("Method")
        for name in COLUMNS:
            table.add_column(name, justify="left" if name in LEFT_ALIGNED else "right")
        for method in methods:
            dataset = view[(split.name, method)]
            prefix = [method] if len(methods) > 1 else []
            for seq in dataset.sequences:
                table.add_row(*map(escape, prefix + sequence_row(seq)))
            table.add_row(*map(escape, prefix + pooled_row(dataset)), style="bold")
        print_table(table, console)
    console.print(detection_line(view), style="dim", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
