"""``vps probe``: what vps sees in videos and frame folders before segmenting them."""

from __future__ import annotations

import json
from typing import List

import typer

from vpscli.cli.console import error_line, out_console, print_table, reports_errors, warning_line
from vpscli.errors import EXIT_PARTIAL_INPUT, PartialFailure, VpsError


@reports_errors
def probe(
    inputs: List[str] = typer.Argument(..., help="Video files, frame folders, SUN-SEG roots or globs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per source)."),
    decode: bool = typer.Option(False, "--decode", help="Decode every frame: exact count, truncation check."),
) -> None:
    """Show size, fps, frame count, duration, rotation and variable-frame-rate of each input.

    A damaged or truncated file is named in a warning (--decode gives the exact number of
    frames that decode) and makes the exit code 4, so a script can find such files before
    segmenting them. Exit code 3 when some inputs could be probed and others not.
    """
    from rich.markup import escape
    from rich.table import Table

    from vpscli.io.sources import discover_sources

    sources, failures = [], {}
    for text in inputs:
        try:
            sources.extend(discover_sources([text]))
        except VpsError as e:
            failures[text] = e
    results = []
    for src in sources:
        try:
            probe = src.probe()
            p = probe.to_json()
            p["name"] = src.name
            if decode:
                p["decoded_frames"] = sum(1 for _ in src)
                p["truncated"] = src.truncation is not None
                p["damaged"] = p["damaged"] or p["truncated"]
                if src.truncation:
                    warning_line(src.truncation.message(str(src.path)))
                elif probe.damaged:  # every announced frame decoded, but the packets were damaged
                    warning_line(probe.damage_message(decode_hint=False))
            elif probe.damaged:
                # the packet count is an upper bound here: only decoding says how many frames survive
                warning_line(probe.damage_message())
            results.append(p)
        except VpsError as e:
            failures[str(src.path)] = e
    if failures and not results:
        raise next(iter(failures.values()))
    if as_json:
        out_console.print_json(json.dumps(results))
    else:
        t = Table("name", "kind", "size", "fps", "frames", "duration", "rotation", "VFR", "codec")
        for p in results:
            frames = str(p["frame_count"])
            if p.get("damaged"):
                announced = p["header_frame_count"] or 0
                frames += f" of {announced} (damaged)" if announced > p["frame_count"] else " (damaged)"
            frames += f" (decoded {p['decoded_frames']})" if "decoded_frames" in p else ""
            t.add_row(
                escape(p["name"]),
                p["kind"],
                f"{p['width']}x{p['height']}",
                f"{p['fps']:.3f}",
                frames,
                f"{p['duration']:.2f}s",
                str(p["rotation"]),
                "yes" if p["vfr"] else "no",
                p["codec"],
            )
        print_table(t)
    if failures:
        for e in failures.values():
            error_line(e.one_line())
        raise PartialFailure({k: e.message for k, e in failures.items()}, total=len(results) + len(failures))
    if any(p.get("damaged") for p in results):
        raise typer.Exit(EXIT_PARTIAL_INPUT)  # the warnings above named the files


def register(app: typer.Typer) -> None:
    app.command("probe")(probe)
