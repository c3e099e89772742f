"""``vps synth``: procedural colonoscopy-like clips with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from vpscli.cli.console import err_console, reports_errors
from vpscli.cli.options import parse_size


@reports_errors
def synth(
    out: Path = typer.Argument(..., help="Output folder."),
    frames: int = typer.Option(48, "--frames", "-n", help="Number of frames."),
    size: str = typer.Option("448x320", "--size", help="Frame size WIDTHxHEIGHT."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate."),
    polyps: int = typer.Option(1, "--polyps", help="Number of polyps."),
    negative: bool = typer.Option(False, "--negative", help="A clip without polyps (empty masks)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same clip)."),
    fmt: str = typer.Option(
        "mp4", "--format", help="mp4 (video + GT masks) or frames (SUN-SEG Frame/ + GT/)."
    ),
    name: str = typer.Option("synth", "--name", help="Clip name (video stem and case folder)."),
    no_text: bool = typer.Option(False, "--no-text", help="Do not burn on-screen text into the frames."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render a synthetic colonoscopy-like clip with exact ground-truth masks.

    Layout: OUT/NAME.mp4 (or OUT/Frame/NAME/) and OUT/GT/NAME/000000.png ..., masks 0/255.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vpscli.synth import SynthConfig, write_clip

    h, w = parse_size(size)
    cfg = SynthConfig(
        frames=frames,
        width=w,
        height=h,
        fps=fps,
        polyps=polyps,
        negative=negative,
        seed=seed,
        text=not no_text,
    )
    cfg.validate()
    with Progress(
        TextColumn("synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("render", total=frames)
        result = write_clip(out, cfg, fmt=fmt, name=name, progress=lambda n: bar.update(task, completed=n))
    where = result.video or result.frames
    err_console.print(
        f"wrote {result.n_frames} frames ({result.polyp_frames} with a polyp): {where}  "
        f"ground truth: {result.gt}"
    )


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
