"""Every run says what ran: model, backbone, weights file, sha256 prefix and the validation record (or its
absence), on the console even under --quiet, in the summary table and in the overlay's HUD."""

from __future__ import annotations

import json

from tests._models import trained_like
from vpscli.cli import main
from vpscli.models import save_checkpoint
from vpscli.weights.store import describe_weights, load_model


def test_bundled_default_describes_its_validation():
    loaded = load_model()
    line = loaded.describe()
    entry = loaded.entry
    assert line.startswith(
        f"{entry.model} on {entry.backbone}, weights {entry.file} (sha256 {entry.sha256[:12]})"
    )
    assert line.endswith(f"validation maxDice {entry.record['metrics']['maxDice']:.3f}")
    assert describe_weights() == line  # the Ray driver's description, without loading a network


def test_weights_without_a_validation_record_say_so(tmp_path):
    path = save_checkpoint(
        trained_like("pns-net", (64, 112), backbone="efficientnet-lite2"), tmp_path / "w.safetensors"
    )
    line = load_model(weights=path).describe()
    assert line.startswith("pns-net on efficientnet-lite2, weights w.safetensors (sha256 ")
    assert line.endswith("no validation record") and describe_weights(weights=path) == line
    # a vps train checkpoint carries its validation figures in its metadata
    scored = save_checkpoint(
        trained_like("pns-net", (64, 112), backbone="efficientnet-lite2"),
        tmp_path / "best.safetensors",
        {"val_metrics": json.dumps({"maxDice": 0.7512})},
    )
    assert load_model(weights=scored).describe().endswith("validation maxDice 0.751")


def test_segment_says_what_ran_even_when_quiet(clip, weights, tmp_path, capsys):
    code = main(
        [
            "segment",
            str(clip / "vid.mp4"),
            "-w",
            str(weights["pns-plus"]),
            "-o",
            str(tmp_path / "o"),
            "--no-overlay",
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "running: pns-plus on res2net50, weights pns-plus.safetensors (sha256 " in err
    assert "no validation record" in err


def test_summary_table_and_hud_carry_the_weights(clip, weights, tmp_path, capsys):
    from vpscli.engine import Segmenter
    from vpscli.engine.record import weights_tag

    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    tag = weights_tag(seg)
    assert tag == f"pns-plus {seg.weights_sha256[:12]}"
    code = main(
        [
            "segment",
            str(clip / "vid.mp4"),
            "-w",
            str(weights["pns-plus"]),
            "-o",
            str(tmp_path / "o"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert seg.weights_sha256[:12] in out


def test_a_plain_run_says_what_and_where_once_without_repeated_notes(clip, weights, tmp_path, capsys):
    code = main(
        [
            "segment",
            str(clip / "vid.mp4"),
            "-w",
            str(weights["pns-plus"]),
            "-o",
            str(tmp_path / "o"),
            "--no-overlay",
        ]
    )
    assert code == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "no validation record, on the CPU" in err
    assert "note:" not in err  # no CUDA fallback note, no model-card note on every run


def test_compile_on_the_cpu_says_it_takes_minutes(clip, weights, tmp_path, capsys, monkeypatch):
    import vpscli.engine.segmenter as segmenter

    real = segmenter.place_model
    monkeypatch.setattr(
        segmenter, "place_model", lambda net, placement, compile=False, mode=None: real(net, placement)
    )
    code = main(
        [
            "segment",
            str(clip / "vid.mp4"),
            "-w",
            str(weights["pns-plus"]),
            "-o",
            str(tmp_path / "o"),
            "--no-overlay",
            "--compile",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--compile: torch.compile builds the model's kernels" in err and "takes minutes on a CPU" in err


def test_a_bundled_file_named_by_its_path_keeps_its_model_card(tmp_path):
    """``-w weights/<bundled file>`` (or a copy of it) is the bundled weights: same card, same description."""
    import shutil

    default = load_model()
    copy = tmp_path / "copy.safetensors"
    shutil.copy(default.weights_path, copy)
    for path in (default.weights_path, copy):
        loaded = load_model(weights=path)
        assert loaded.entry is not None and loaded.entry.file == default.entry.file
        assert loaded.describe().endswith(
            f"validation maxDice {default.entry.record['metrics']['maxDice']:.3f}"
        )
        assert describe_weights(weights=path) == loaded.describe()
    other = save_checkpoint(
        trained_like("pns-net", (64, 112), backbone="efficientnet-lite2"), tmp_path / "w.safetensors"
    )
    assert load_model(weights=other).entry is None
