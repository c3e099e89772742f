"""``vps overlay``: review overlays of predicted (and ground-truth) masks on a video."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vpscli.cli.console import err_console, notice, reports_errors, warning_line


@reports_errors
def overlay(
    source: Path = typer.Argument(..., help="Video file or frame folder."),
    masks: Path = typer.Argument(
        ...,
        help="Prediction mask folder (000000.png or by frame name), probability folder, or a vps "
        "segment run folder (its masks/).",
    ),
    gt: Optional[Path] = typer.Option(
        None,
        "--gt",
        help="Ground-truth mask folder: red = GT only, green = prediction only, yellow = overlap.",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "-o",
        "--output",
        help="Output MP4 (H.264, source fps and frame "
        "count). Default: MASKS/../<source>_overlay.mp4 unless only --frames or "
        "--contact-sheet is given.",
    ),
    style: str = typer.Option("both", "--style", help="fill, contour, both (fill + contour) or box."),
    alpha: float = typer.Option(0.4, "--alpha", help="Fill opacity, 0-1."),
    palette: str = typer.Option(
        "default",
        "--palette",
        help="default (red/green/yellow) or colorblind (blue/orange/white, GT dashed).",
    ),
    threshold: Optional[float] = typer.Option(
        None, "--threshold", help="Threshold for probability masks (default: run.json's, else 0.5)."
    ),
    timecode: bool = typer.Option(True, "--timecode/--no-timecode", help="Burn in the timecode (true PTS)."),
    info: bool = typer.Option(
        True,
        "--info/--no-info",
        help="Burn in frame index, model, threshold, area, confidence and the research-use banner.",
    ),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Raw frame and overlay next to each other."
    ),
    timeline: bool = typer.Option(
        True, "--timeline/--no-timeline", help="Detection timeline strip at the bottom."
    ),
    frames: Optional[Path] = typer.Option(
        None, "--frames", help="Also (or only) write PNG frames to this folder."
    ),
    contact_sheet: Optional[Path] = typer.Option(
        None, "--contact-sheet", help="Write a grid of frames to this PNG."
    ),
    sheet_frames: int = typer.Option(12, "--sheet-frames", help="Frames on the contact sheet."),
    sheet_pick: str = typer.Option(
        "even", "--sheet-pick", help="even (evenly spaced) or confident (most confident frames)."
    ),
    allow_mismatch: bool = typer.Option(
        False,
        "--allow-mismatch",
        help="Render even when mask and frame counts differ; missing masks are drawn as 'no mask'.",
    ),
    mask_label: str = typer.Option(
        "prediction",
        "--mask-label",
        help="Legend name of the MASKS layer (e.g. 'ground truth' to review annotations alone).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notes."),
) -> None:
    """Draw predicted masks (and ground truth) over a video: MP4, PNG frames, contact sheet.

    Frame i of the output is frame i of the source, at its timestamp. Unless --allow-mismatch, it is an
    error when the frame counts differ, when masks have another aspect ratio than SOURCE (masks of the
    same aspect at another resolution are resized, with a note), or when MASKS come from a vps segment
    run of another video (run.json's source fingerprint); for a damaged (truncated) SOURCE, masks of
    frames 0..k-1 suffice and every frame that decodes must have one.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vpscli.render.review import ReviewOptions, render_review

    options = ReviewOptions(
        style=style,
        alpha=alpha,
        palette=palette,
        timecode=timecode,
        info=info,
        side_by_side=side_by_side,
        timeline=timeline,
        threshold=threshold,
        allow_mismatch=allow_mismatch,
        sheet_frames=sheet_frames,
        sheet_pick=sheet_pick,
        mask_label=mask_label,
    )
    options.validate()
    from vpscli.io.run_folder import RunFolder

    masks = RunFolder.mask_folder(masks)
    if out is None and frames is None and contact_sheet is None:
        out = masks.parent / f"{source.stem if source.is_file() else source.name}_overlay.mp4"
    with Progress(
        TextColumn("overlay"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("render", total=None)
        result = render_review(
            source,
            masks,
            gt,
            video_out=out,
            frames_out=frames,
            contact_sheet=contact_sheet,
            options=options,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for warning in result.warnings:  # truncated source, partial segment run, mismatches drawn anyway
        warning_line(warning)
    for note in result.notes:
        notice(note, quiet)
    written = [str(p) for p in (result.video, result.frames_dir, result.contact_sheet) if p is not None]
    err_console.print(
        f"wrote {result.frames} frames ({result.size[0]}x{result.size[1]}): " + ", ".join(written),
        soft_wrap=True,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("overlay")(overlay)
