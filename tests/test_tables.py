"""Tables never cut a value: plain lines when the output is not a terminal or the terminal is too
narrow, the Rich table on a terminal wide enough (``vpscli.cli.console.print_table``)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console
from rich.table import Table

from vpscli.cli.console import plain_table_lines, print_table

LONG = "/data/hospital-a/colonoscopy/2024-03-17/patient_0042_withdrawal_phase_full_length_recording.mp4"
PROBE_ROW = [LONG, "video", "3840x2160", "29.970", "1234 (decoded 1200)", "41.23s", "90", "yes", "hevc"]
BOX = set("┏┃━│─┡└┘┌┐╇")


def probe_table() -> Table:
    t = Table("name", "kind", "size", "fps", "frames", "duration", "rotation", "VFR", "codec")
    t.add_row(*PROBE_ROW)
    t.add_row("short.mp4", "video", "96x64", "25.000", "12", "0.48s", "0", "no", "h264")
    return t


def render(table: Table, *, terminal: bool, width: int) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=terminal, color_system="truecolor" if terminal else None
    )
    print_table(table, console)
    return buffer.getvalue()


def cells(line: str) -> list[str]:
    """The values of a plain line (columns are separated by at least two spaces)."""
    return re.split(r" {2,}", line.strip())


@pytest.mark.parametrize("terminal", [True, False])
def test_narrow_terminal_or_pipe_prints_every_value_whole(terminal):
    text = render(probe_table(), terminal=terminal, width=80)
    lines = text.splitlines()
    assert cells(lines[0]) == [
        "name",
        "kind",
        "size",
        "fps",
        "frames",
        "duration",
        "rotation",
        "VFR",
        "codec",
    ]
    assert cells(lines[1]) == PROBE_ROW
    assert cells(lines[2]) == ["short.mp4", "video", "96x64", "25.000", "12", "0.48s", "0", "no", "h264"]
    assert len(lines) == 3
    assert "…" not in text and "\x1b" not in text and not BOX & set(text)
    # padded columns: every value of a column starts at the same position
    assert lines[1].index("video") == lines[2].index("video") == lines[0].index("kind")


def test_wide_terminal_gets_the_rich_table():
    text = render(probe_table(), terminal=True, width=300)
    assert BOX & set(text) and "\x1b[" in text  # boxes and styles: the Rich table
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for value in PROBE_ROW:
        assert value in plain
    assert "…" not in plain


def test_plain_lines_keep_title_right_alignment_and_read_markup():
    t = Table(title="Dataset TestEasyDataset-Seen")
    t.add_column("Method")
    t.add_column("maxDice", justify="right")
    t.add_row("PNSPlus", "0.5")
    t.add_row("[green]a-much-longer-method-name[/]", "0.123")
    assert plain_table_lines(t, Console(file=io.StringIO())) == [
        "Dataset TestEasyDataset-Seen",
        "Method                     maxDice",
        "PNSPlus                        0.5",
        "a-much-longer-method-name    0.123",
    ]
    headless = Table(show_header=False, box=None)
    headless.add_row("vps", "0.1.0\n(Python 3.11)")  # a line break inside a cell keeps the row on one line
    assert plain_table_lines(headless, Console(file=io.StringIO())) == ["vps  0.1.0 (Python 3.11)"]


def test_evaluate_table_of_17_metrics_uncut_on_a_narrow_terminal(tmp_path, capsys, monkeypatch):
    from tests.test_evaluate_cli import make_tree
    from vpscli.cli import main
    from vpscli.cli.commands import evaluate as evaluate_command
    from vpscli.metrics.keys import METRIC_KEYS as ALL_KEYS
    from vpscli.metrics.report import format_value

    assert len(ALL_KEYS) == 17
    make_tree(tmp_path, {"case-with-a-rather-long-name_001": 4, "2": 4})
    buffer = io.StringIO()
    monkeypatch.setattr(
        evaluate_command,
        "out_console",
        Console(file=buffer, width=80, force_terminal=True, color_system="truecolor"),
    )
    code = main(
        [
            "evaluate",
            str(tmp_path / "pred"),
            str(tmp_path / "gt"),
            "-m",
            "all",
            "--per-sequence",
            "--json",
            str(tmp_path / "r.json"),
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "r.json").read_text())["splits"]["."]["."]
    lines = buffer.getvalue().splitlines()
    assert "…" not in buffer.getvalue() and not BOX & set(buffer.getvalue())
    header = lines.index(next(line for line in lines if line.startswith("Method")))
    assert cells(lines[header]) == ["Method", *ALL_KEYS]
    row = cells(lines[header + 1])
    assert row[0] == "predictions"
    assert row[1:] == [format_value(doc["dataset"][k]) for k in ALL_KEYS]
    seq_header = next(i for i, line in enumerate(lines) if line.startswith("Sequence"))
    assert cells(lines[seq_header]) == ["Sequence", "frames", *ALL_KEYS]
    seq = next(cells(line) for line in lines[seq_header:] if line.startswith("case-with"))
    assert seq[:2] == ["case-with-a-rather-long-name_001", "2"]
    assert seq[2:] == [
        format_value(doc["per_sequence"]["case-with-a-rather-long-name_001"][k]) for k in ALL_KEYS
    ]


# --- every command's table through the real CLI, piped with COLUMNS=80 -----------------------------


def vps(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def assert_plain(stdout: str, ellipses: int = 0) -> None:
    """No box drawing, colour codes or cut values (Rich marks a cut value with "…")."""
    assert stdout.count("…") == ellipses and "\x1b" not in stdout and not BOX & set(stdout), stdout


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    name = "patient_0042_withdrawal_phase_with_a_long_descriptive_name"
    r = vps("synth", root, "--frames", 6, "--size", "96x64", "--name", name, "-q")
    assert r.returncode == 0, r.stderr
    return root / f"{name}.mp4"


def test_probe_table_piped_at_80_columns(long_clip):
    r = vps("probe", long_clip)
    assert r.returncode == 0, r.stderr
    assert_plain(r.stdout)
    header, row = r.stdout.splitlines()
    assert cells(header) == ["name", "kind", "size", "fps", "frames", "duration", "rotation", "VFR", "codec"]
    assert cells(row) == [long_clip.stem, "video", "96x64", "25.000", "6", "0.24s", "0", "no", "h264"]


def test_segment_summary_piped_at_80_columns(long_clip, tmp_path):
    out = tmp_path / "a-long-output-folder-name-for-segmentation-results"
    r = vps("segment", long_clip, "-o", out, "--no-overlay", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert_plain(r.stdout)
    header, row = r.stdout.splitlines()
    assert cells(header) == [
        "input",
        "status",
        "weights",
        "frames",
        "with polyp",
        "flagged by model",
        "episodes",
        "longest episode",
        "frames/s",
        "output",
    ]
    values = cells(row)
    assert (
        values[:2] == [long_clip.stem, "complete"]
        and values[3] == "6"
        and values[9] == str(out / long_clip.stem)
    )
    assert re.fullmatch(r"[a-z-]+ [0-9a-f]{12}", values[2])  # the model and its weights' sha256 prefix


def test_models_table_uncut(monkeypatch, capsys):
    from vpscli.cli import main

    rows = [
        {
            "name": "pns-plus",
            "backbone": "res2net50",
            "default": True,
            "params": 9_790_000,
            "gflops_per_frame": 17.5,
            "imagenet": False,
            "input_size": [256, 448],
            "window": "anchor (frame 0) + 5 frames + a deliberately long description",
            "weights": ["pns-plus-demo.safetensors", "pns-plus-finetuned-on-our-hospital-data.safetensors"],
            "state": "anchor",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "official_weights": ["PNSPlus.pth"],
        },
        {
            "name": "pns-plus",
            "backbone": "efficientnet-lite2",
            "default": False,
            "params": 1_420_000,
            "gflops_per_frame": 2.3,
            "imagenet": True,
            "input_size": [256, 448],
            "window": "anchor (frame 0) + 5 frames",
            "weights": [],
            "state": "anchor",
            "mean": [127 / 255] * 3,
            "std": [128 / 255] * 3,
            "official_weights": ["PNSPlus.pth"],
        },
    ]
    rows = [{**r, "val_maxDice": 0.8064 if r["weights"] else None} for r in rows]
    monkeypatch.setattr("vpscli.zoo.describe_zoo", lambda: rows)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert_plain(out)
    header, row, lite = out.splitlines()
    assert cells(header) == [
        "name",
        "backbone",
        "params",
        "GFLOPs/frame",
        "input (W×H)",
        "window",
        "weights",
        "valid maxDice",
        "state",
        "mean / std",
        "official weights",
    ]
    assert cells(row) == [
        "pns-plus (default)",
        "res2net50",
        "9.79 M",
        "17.5",
        "448×256",
        rows[0]["window"],
        ", ".join(rows[0]["weights"]),
        "0.806",
        "anchor",
        "(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)",
        "PNSPlus.pth",
    ]
    assert cells(lite)[:3] == ["pns-plus", "efficientnet-lite2", "1.42 M"]
    assert cells(lite)[6] == "none bundled; ImageNet init (vps[train])"  # brackets shown, not read as markup


def test_weights_table_piped_at_80_columns():
    from vpscli.paths import weights_dir
    from vpscli.weights import read_manifest

    r = vps("weights", "list")
    assert r.returncode == 0, r.stderr
    entries = read_manifest(weights_dir())
    assert_plain(
        r.stdout, ellipses=len(entries)
    )  # the table shows a 12-digit sha256 prefix "2a98…" by design
    lines = r.stdout.splitlines()
    assert cells(lines[0]) == [
        "file",
        "model",
        "backbone",
        "input (W×H)",
        "dtype",
        "sha256",
        "trained on",
        "validation",
        "frame decision",
    ]
    for line, entry in zip(lines[1:], entries):
        values = cells(line)
        assert values[0].removesuffix(" (default)") == entry.file and values[5] == entry.sha256[:12] + "…"
        assert values[2] == entry.backbone and values[6] == entry.record["training_data"]
        assert values[8] == (
            f"peak ≥ {entry.presence:g}" if entry.presence is not None else "mask has a pixel"
        )


def test_doctor_piped_at_80_columns():
    from vpscli import __version__

    r = vps("doctor")
    assert_plain(r.stdout)
    first = r.stdout.splitlines()[0]
    assert first.startswith("vps  ") and f"{__version__} (Python " in first and first.endswith(")")


def test_names_with_brackets_are_shown_as_they_are(tmp_path):
    """A file named `clip[red]2.mp4` is a name, not Rich markup: the table keeps the brackets."""
    from tests._media import make_testsrc

    make_testsrc(tmp_path / "clip[red]2.mp4", 0.3, 10)
    r = subprocess.run(
        [sys.executable, "-m", "vpscli", "probe", str(tmp_path / "clip[red]2.mp4")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "clip[red]2" in r.stdout
