"""``vps models``: the model zoo — each architecture on each backbone: parameters, GFLOPs per
frame, window, input size, weights."""

from __future__ import annotations

import json

import typer

from vpscli.cli.console import out_console, print_table, reports_errors


@reports_errors
def models(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show normalisation, state and official weights."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON list (name, params, gflops_per_frame, ...)."
    ),
) -> None:
    """List each model on each backbone: parameters, GFLOPs per frame at the input size, window, weights
    (bundled, and whether `vps train` can start the backbone from ImageNet)."""
    from rich.markup import escape
    from rich.table import Table

    from vpscli.weights.manifest import format_size
    from vpscli.zoo import describe_zoo

    rows = describe_zoo()
    if as_json:
        out_console.print_json(json.dumps(rows))
        return
    t = Table(
        "name", "backbone", "params", "GFLOPs/frame", "input (W×H)", "window", "weights", "valid maxDice"
    )
    if verbose:
        for col in ("state", "mean / std", "official weights"):
            t.add_column(col)
    for r in rows:
        weights = ", ".join(r["weights"]) or "none bundled"
        if r.get("imagenet"):
            weights += escape("; ImageNet init (vps[train])")
        cells = [
            r["name"] + (" (default)" if r.get("default") else ""),
            r["backbone"],
            f"{r['params'] / 1e6:.2f} M",
            f"{r['gflops_per_frame']:.1f}",
            format_size(r["input_size"]),
            r["window"],
            weights,
            "-" if r["val_maxDice"] is None else f"{r['val_maxDice']:.3f}",
        ]
        if verbose:
            cells += [
                r["state"],
                f"{tuple(round(x, 3) for x in r['mean'])} / {tuple(round(x, 3) for x in r['std'])}",
                ", ".join(r["official_weights"]) or "-",
            ]
        t.add_row(*cells)
    print_table(t)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
