"""``vps report``: an offline HTML review page per ``vps segment`` run folder, and an index for a batch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from vpscli.cli.console import err_console, reports_errors
from vpscli.errors import UsageError


@reports_errors
def report(
    folders: List[Path] = typer.Argument(
        ..., help="vps segment run folders (OUT/<video>/), or an output root (OUT/, every run folder in it)."
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="The page's file (one run folder; default: "
        "RUN/report.html), or the index page (a batch; default: OUT/index.html).",
    ),
    gt: Optional[Path] = typer.Option(
        None,
        "--gt",
        help="Ground-truth mask folder of the video (one run folder): "
        "adds the vps evaluate numbers and marks the GT polyp frames on the timeline.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Write a review page a clinician opens in a browser: the overlay video with a clickable timeline, the
    episodes with thumbnails, and what ran. One self-contained HTML file per video (nothing is fetched from
    a network); for several videos also an index page."""
    from vpscli.io.run_folder import RunFolder
    from vpscli.report import write_index, write_report

    runs, roots = [], []
    for folder in folders:
        if (folder / "run.json").is_file():
            runs.append(folder)
        elif folder.is_dir():
            found = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "run.json").is_file())
            if not found:
                raise UsageError(
                    "holds no vps segment run (no run.json in it or in its folders)",
                    path=folder,
                    fix="pass OUT/<video>/ or the OUT/ folder vps segment wrote",
                )
            runs += found
            roots.append(folder)
        else:
            raise UsageError("not found", path=folder, fix="check the path")
    if gt is not None and len(runs) != 1:
        raise UsageError("--gt takes the ground truth of one video", fix="pass one run folder with --gt")
    batch = len(runs) > 1 or roots
    pages = [write_report(r, None if batch else out, gt) for r in runs]
    if not quiet:
        for page in pages:
            err_console.print(f"wrote {page}", markup=False, soft_wrap=True)
    if batch:
        root = roots[0] if len(roots) == 1 else Path(RunFolder(runs[0]).path).parent
        index = write_index(root, runs, out)
        if not quiet:
            err_console.print(f"wrote {index}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
