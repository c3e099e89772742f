"""``vps weights import|list|verify|default``: the weights folder (``$VPS_WEIGHTS`` or ``weights/``);
``vps weights cache``: the models converted from them for a faster backend (``$VPS_CACHE/graphs``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vpscli.cli.console import err_console, error_line, out_console, print_table, reports_errors

weights_app = typer.Typer(
    help="Import, list and verify model weights (never downloads anything), and clean the models "
    "converted from them.",
    no_args_is_help=True,
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


@weights_app.command("cache")
@reports_errors
def cache(
    prune: bool = typer.Option(
        False, "--prune", help="Remove the converted models this installation will never load again."
    ),
    clear: bool = typer.Option(
        False, "--clear", help="Remove every converted model (each is converted again when a run needs it)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON."),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", help="The cache folder (default: $VPS_CACHE, else ~/.cache/vps)."
    ),
    weights_dir: Path = typer.Option(
        None,
        "--weights-dir",
        help="Where the weights are registered, to name them (default: $VPS_WEIGHTS or weights/).",
    ),
) -> None:
    """List the models converted for OpenVINO or ONNX Runtime (size, last use, and which this installation
    will never load again: made by another vps or runtime version); --prune removes those, --clear all."""
    from vpscli.backends.store import cache_root, converted_models, format_bytes, remove_entries, scan_cache
    from vpscli.errors import UsageError

    if prune and clear:
        raise UsageError("--prune and --clear both remove entries", fix="give one of them")
    root = cache_root(cache_dir)
    entries = scan_cache(root)
    if prune or clear:
        kept = [e for e in entries if not (clear or e.stale)]
        freed = remove_entries(e for e in entries if clear or e.stale)
        err_console.print(
            f"removed {converted_models(len(entries) - len(kept))} ({format_bytes(freed)}) from "
            f"{root / 'graphs'}; kept {len(kept)} ({format_bytes(sum(e.size for e in kept))})"
        )
        return
    if as_json:
        out_console.print_json(json.dumps([_entry_json(e) for e in entries]))
        return
    if not entries:
        err_console.print(f"no converted models in {root / 'graphs'}")
        return
    _cache_table(entries, _weights_names(weights_dir))
    stale = [e for e in entries if e.stale]
    err_console.print(
        f"{converted_models(len(entries))} in {root / 'graphs'}, {format_bytes(sum(e.size for e in entries))}"
        + (
            f"; {len(stale)} will never be loaded again ({format_bytes(sum(e.size for e in stale))}): "
            "vps weights cache --prune removes them"
            if stale
            else ""
        )
    )


def _entry_json(e) -> dict:
    return {
        "folder": str(e.folder),
        "fields": e.fields,
        "bytes": e.size,
        "last_used": e.last_used,
        "stale": e.stale,
    }


def _weights_names(weights_dir: Path | None) -> dict[str, str]:
    """sha256 → the registered weights file it belongs to (none where the folder has no manifest)."""
    from vpscli.errors import InputError
    from vpscli.weights import read_manifest
    from vpscli.weights.manifest import folder_or_default

    try:
        return {e.sha256: e.file for e in read_manifest(folder_or_default(weights_dir))}
    except (OSError, InputError):  # a damaged manifest is vps weights verify's to report, not the cache's
        return {}


def _cache_table(entries, names: dict[str, str]) -> None:
    """The entries as a table: ``names`` turns a weights sha256 into its registered file, else
    ``sha256 <12 digits>…`` (weights given by path, or since replaced)."""
    import time

    from rich.table import Table

    from vpscli.backends.store import format_bytes
    from vpscli.weights import format_size

    t = Table(
        "entry", "model", "weights", "backend", "precision", "input (W×H)", "size", "last used", "status"
    )
    for e in entries:
        f = e.fields or {}
        size = f.get("input_size")
        made_by = " ".join(str(f[k]) for k in ("backend", "backend_version") if f.get(k))
        sha = str(f.get("weights_sha256") or "")
        t.add_row(
            e.folder.name,
            str(f.get("model", "-")),
            names.get(sha) or (f"sha256 {sha[:12]}…" if sha else "-"),
            made_by or "-",
            str(f.get("precision", "-")),
            format_size(size) if isinstance(size, list) and len(size) == 2 else "-",
            format_bytes(e.size),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used)),
            f"never loaded again: {e.stale}" if e.stale else "current",
        )
    print_table(t)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
