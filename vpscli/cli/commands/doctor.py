"""``vps doctor``: versions, devices, encoders, weights and data — instant, no downloads."""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from vpscli.cli.console import err_console, out_console, print_table, reports_errors


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


def _default_backend_text(b: dict) -> str:
    """`` — --backend auto runs the CPU model on openvino``; what ``$VPS_BACKEND`` makes the default."""
    default = b["default"]
    if b["default_error"]:
        return f" — $VPS_BACKEND ({escape(default)}) names no backend"
    return f" — --backend {escape(default)} runs the CPU model on {b['auto_on_cpu'] if default == 'auto' else default}"


def _cache_text(c: dict) -> str:
    """`` — 24 converted models, 1.1 GiB (16 never loaded again, 813 MiB: vps weights cache --prune)``"""
    from vpscli.backends.store import converted_models, format_bytes

    if not c["count"]:
        return " — no converted models"
    text = f" — {converted_models(c['count'])}, {format_bytes(c['bytes'])}"
    if c["stale"]:
        text += (
            f" ({c['stale']} never loaded again, {format_bytes(c['stale_bytes'])}: "
            "vps weights cache --prune removes them)"
        )
    return text


# long: one report row per check, in the order a user reads them
@reports_errors
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (for bug reports)."),
    deep: bool = typer.Option(False, "--deep", help="Import torch and ask it about devices (slower)."),
) -> None:
    """Check the installation: versions, CPU/GPU, H.264 encoder, bundled weights, data folder.

    Exits 1 when something vps needs is broken (a missing package, no H.264 encoder,
    weights that fail verification).
    """
    from rich.table import Table

    from vpscli.doctor import collect

    r = collect(deep=deep)
    if as_json:
        out_console.print_json(json.dumps(r))
        raise typer.Exit(0 if r["ok"] else 1)
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("vps", f"{r['vps']} (Python {r['python']}, {r['platform']})")
    for name, ver in r["packages"].items():
        t.add_row(name, ver or "[red]not installed[/]")
    for extra, e in r["extras"].items():
        t.add_row(
            escape(f"vps[{extra}]"),
            f"{e['package']} {e['version']} ({e['gives']})"
            if e["version"]
            else escape(f"not installed: pip install 'vps[{extra}]' for {e['gives']}"),
        )
    tb = r["torch_build"]
    t.add_row(
        "torch build",
        f"CUDA {tb['cuda']}" if tb.get("cuda") else ("ROCm " + tb["hip"] if tb.get("hip") else "CPU only"),
    )
    c = r["cpu"]
    t.add_row(
        "CPU",
        f"{c['model']} — {c['threads']} threads, AVX-512 {_yes(c['avx512'])}, "
        f"AVX-512 BF16 {_yes(c['avx512_bf16'])}, AMX {_yes(c['amx_bf16'])}",
    )
    cu = r["cuda"]
    if cu["devices"]:
        for d in cu["devices"]:
            t.add_row(f"cuda:{d['index']}", f"{d['name']}, {d['memory_mib']} MiB")
    else:
        t.add_row("CUDA", f"no GPU ({cu['source']}) — vps runs on the CPU")
    f = r["ffmpeg"]
    t.add_row(
        "ffmpeg", f"{f['version']} — H.264 {_yes(f['h264'])} ({', '.join(f['h264_encoders']) or 'none'})"
    )
    b = r["backends"]
    t.add_row(
        "backends",
        ", ".join(
            f"{n} {b[n]}" if b[n] else f"{n} [dim]not installed[/]"
            for n in ("torch", "openvino", "onnxruntime")
        )
        + _default_backend_text(b),
    )
    t.add_row("model cache", escape(b["cache"]) + _cache_text(b["cache_contents"]))
    w = r["weights"]
    if w["entries"]:
        for e in w["entries"]:
            state = (
                "[green]verified[/]"
                if e["verified"]
                else ("[red]sha256 mismatch[/]" if e["present"] else "[red]missing[/]")
            )
            t.add_row(f"weights {e['model']}", f"{e['file']} {state}")
    else:
        t.add_row("weights", f"none bundled in {w['dir']}")
    d = r["data"]
    if d["found"]:
        t.add_row("data", f"{d['dir']} — " + ", ".join(d["datasets"]))
    elif d["source"] == "VPS_DATA":
        t.add_row("data", f"{d['dir']} — not found (VPS_DATA names it)")
    else:  # an installed vps: public data is only for the tests and training, and nothing needs it here
        t.add_row("data", "none (only vps train and the test suite read public data: set VPS_DATA to use it)")
    print_table(t)
    for p in r["problems"]:
        err_console.print(f"[bold red]problem:[/] {p}")
    if not r["ok"]:
        raise typer.Exit(1)
    out_console.print("[green]all checks passed[/]")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
