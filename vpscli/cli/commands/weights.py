"""``vps weights import|list|verify``: the weights folder (``$VPS_WEIGHTS`` or ``weights/``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vpscli.cli.console import err_console, error_line, out_console, print_table, reports_errors

weights_app = typer.Typer(
    help="Import, list and verify model weights (never downloads anything).", no_args_is_help=True
)


@weights_app.command("import")
@reports_errors
def import_(
    file: Path = typer.Argument(
        ..., help="A vps train checkpoint (.safetensors) or an official .pth (loaded with weights_only=True)."
    ),
    model: str = typer.Option(
        None,
        "--model",
        "-m",
        help="Model it belongs to (default: the one the file records; required for .pth, e.g. pns-plus).",
    ),
    name: str = typer.Option(None, "--name", help="File name stem in the weights folder."),
    half: bool = typer.Option(False, "--half", help="Store parameters as float16 (how vps bundles weights)."),
    note: str = typer.Option("", "--note", help="A line for the model card (what the weights are good for)."),
    weights_dir: Path = typer.Option(
        None, "--weights-dir", help="Target folder (default: $VPS_WEIGHTS or weights/)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a file of the same name (never the default)."
    ),
    size: str = typer.Option(
        None,
        "--size",
        help="Run the weights at this input size, WIDTHxHEIGHT, instead of their training size: "
        "per-position parameters are resized as for fine-tuning at a new size; validate the result "
        "(the training's validation figures are not carried over).",
    ),
) -> None:
    """Convert a checkpoint to safetensors and register it in manifest.json (sha256, model, input size, dtype,
    training data and validation metrics from vps train's record). The default weights stay as they are
    (`vps weights default` changes them)."""
    from vpscli.cli.options import parse_size
    from vpscli.weights import format_size
    from vpscli.weights.importer import import_weights

    entry = import_weights(
        file,
        model,
        folder=weights_dir,
        name=name,
        half=half,
        note=note,
        overwrite=overwrite,
        size=parse_size(size) if size else None,
    )
    legacy = ", legacy PNS normalisation" if entry.record.get("legacy_norm") else ""
    err_console.print(
        f"imported {file} as {entry.file} for {entry.model} at {format_size(entry.input_size)} (W×H), "
        f"{entry.record['dtype']} (sha256 {entry.sha256[:12]}…{legacy})"
    )


@weights_app.command("default")
@reports_errors
def default(
    file: str = typer.Argument(..., help="A registered weights file (as `vps weights list` shows it)."),
    weights_dir: Path = typer.Option(
        None, "--weights-dir", help="Folder (default: $VPS_WEIGHTS or weights/)."
    ),
) -> None:
    """Make FILE the weights `vps segment` runs when no --model or --weights is given."""
    from vpscli.weights.importer import set_default

    entry = set_default(file, weights_dir)
    err_console.print(
        f"default weights: {entry.file} ({entry.model}, {entry.backbone}, sha256 {entry.sha256[:12]}…)"
    )


@weights_app.command("list")
@reports_errors
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print the manifest entries as JSON."),
    weights_dir: Path = typer.Option(
        None, "--weights-dir", help="Folder (default: $VPS_WEIGHTS or weights/)."
    ),
) -> None:
    """List the registered weights."""
    from rich.table import Table

    from vpscli.weights import format_size, read_manifest
    from vpscli.weights.manifest import folder_or_default

    root = folder_or_default(weights_dir)
    entries = read_manifest(root)
    if as_json:
        out_console.print_json(json.dumps([e.to_json() for e in entries]))
        return
    if not entries:
        err_console.print(f"no weights registered in {root}")
        return
    from vpscli.weights.manifest import read_default

    chosen = read_default(root)
    t = Table(
        "file",
        "model",
        "backbone",
        "input (W×H)",
        "dtype",
        "sha256",
        "trained on",
        "validation",
        "frame decision",
    )
    for e in entries:
        metrics = e.record.get("metrics") or {}
        val = ", ".join(
            f"{k} {v:.3f}"
            for k, v in metrics.items()
            if k in ("maxDice", "Smeasure", "MAE") and isinstance(v, (int, float))
        )
        if val and metrics.get("validation_data"):
            val += f" ({metrics['validation_data']})"
        t.add_row(
            e.file + (" (default)" if e.file == chosen else ""),
            e.model,
            e.backbone,
            format_size(e.input_size) if e.input_size else "-",
            str(e.record.get("dtype", "-")),
            e.sha256[:12] + "…",
            str(e.record.get("training_data") or "-"),
            val or "-",
            f"peak ≥ {e.presence:g}" if e.presence is not None else "mask has a pixel",
        )
    print_table(t)


@weights_app.command("verify")
@reports_errors
def verify(
    weights_dir: Path = typer.Option(
        None, "--weights-dir", help="Folder (default: $VPS_WEIGHTS or weights/)."
    ),
) -> None:
    """Check every registered file: present, sha256 as recorded, and loads into its model. Exit 1 on failure."""
    from vpscli.weights.store import verify_weights

    results = verify_weights(weights_dir)
    if not results:
        err_console.print("no weights registered")
        return
    for r in results:
        if r.ok:
            out_console.print(f"[green]ok[/] {r.entry.file} ({r.entry.model})")
        else:
            error_line(f"{r.entry.file} ({r.entry.model}): {r.problem}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
