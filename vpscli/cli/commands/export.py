"""``vps export``: hand vps masks to annotation tools (CVAT, COCO, Label Studio, DAVIS)."""

from __future__ import annotations

from typing import Optional

import typer

from vpscli.cli.console import notice, reports_errors, warning_line


@reports_errors
def export(
    masks: str = typer.Argument(
        ..., help="A vps segment output folder (masks/, frames.csv, run.json) or a mask folder."
    ),
    fmt: str = typer.Option(
        ..., "--format", "-f", help="cvat-mask | cvat-video | coco | labelstudio | davis"
    ),
    out: str = typer.Option(..., "--out", "-o", help="Output folder."),
    video: Optional[str] = typer.Option(
        None, "--video", help="Source video or frame folder: checks sizes, gives frames."
    ),
    probs: Optional[str] = typer.Option(
        None, "--probs", help="Probability maps for scores (default: probs/ beside masks/)."
    ),
    label: str = typer.Option("polyp", "--label", help="Label name in the annotation tool."),
    min_area: int = typer.Option(
        0, "--min-area", help="Drop connected components smaller than this many pixels."
    ),
    include_frames: bool = typer.Option(
        False, "--include-frames", help="Also write the decoded --video frames, named to match."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the files of a previous export in OUT, once the new one is complete.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Export masks as CVAT Segmentation mask 1.1 zip, CVAT for video 1.1 XML tracks, COCO RLE JSON,
    Label Studio brush tasks or DAVIS palette PNGs, named by 0-based frame index (frame_000123).

    OUT may hold other files; files this export would write are an error unless --overwrite.
    """
    from vpscli.export.runner import export_masks

    result = export_masks(
        masks,
        fmt.lower(),
        out,
        video=video,
        probs=probs,
        label=label,
        min_area=min_area,
        include_frames=include_frames,
        overwrite=overwrite,
    )
    for warning in result.warnings:  # partial run, frames without a mask: never silenced by --quiet
        warning_line(warning)
    if result.replaced:
        notice(f"replaced the previous export in {out}: {', '.join(map(str, result.replaced))}", quiet=quiet)
    notice(
        f"{result.format}: {result.frames} frames, {result.instances} polyp instances in "
        f"{result.tracks} tracks → {result.path}",
        quiet=quiet,
    )
    if result.frames_folder is not None:
        notice(f"{result.source_frames} source frames → {result.frames_folder}", quiet=quiet)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
