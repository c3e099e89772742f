"""Each bad input is named for what it is: a text file posing as weights, a training snapshot, an empty mask,
a video under an unlisted extension, --fps given for a video, and --debug tracebacks for one failed input."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import torch

from vpscli.errors import InputError
from vpscli.io.masks import read_mask
from vpscli.io.sources import VideoFileSource, discover_sources
from vpscli.models import build_model, load_checkpoint


def vps(*args):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "COLUMNS": "250"},
    )


@pytest.mark.parametrize(
    "content, said",
    [
        (b"hello\n", "is a text file, not a PyTorch checkpoint"),
        (b"", "is an empty file (0 bytes)"),
        (b"<!DOCTYPE html><html>", "is an HTML page"),
        (bytes(range(256)), "neither a torch.save archive nor a pickle"),
    ],
)
def test_weights_files_that_are_not_checkpoints(tmp_path, content, said):
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(said)):
        load_checkpoint(build_model("pns-net", backbone="efficientnet-lite2"), path)


def test_a_training_snapshot_is_named_as_such(tmp_path):
    model = build_model("pns-net", backbone="efficientnet-lite2")
    snapshot = {
        "format": "vps-train-1",
        "step": 3,
        "model": model.state_dict(),
        "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
    }
    torch.save(snapshot, tmp_path / "checkpoint.pt")
    with pytest.raises(InputError, match="is a vps train snapshot") as e:
        load_checkpoint(model, tmp_path / "checkpoint.pt")
    assert "best.safetensors or last.safetensors" in e.value.one_line()


def test_an_empty_mask_file_says_it_is_empty(tmp_path):
    (tmp_path / "m.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"the file is empty, 0 bytes"):
        read_mask(tmp_path / "m.png")


def test_a_video_under_an_unlisted_extension_is_read(clip, tmp_path):
    shutil.copy(clip / "vid.mp4", tmp_path / "vcd.dat")
    (source,) = discover_sources([str(tmp_path / "vcd.dat")])
    assert isinstance(source, VideoFileSource) and source.probe().frame_count == 11
    (tmp_path / "notes.dat").write_text("not a video")
    with pytest.raises(InputError, match="unsupported file type '.dat'"):
        discover_sources([str(tmp_path / "notes.dat")])


def test_fps_for_a_video_is_said_to_be_unused_and_debug_shows_one_inputs_traceback(clip, weights, tmp_path):
    bad = tmp_path / "bad.mp4"
    data = (clip / "vid.mp4").read_bytes()
    bad.write_bytes(data[: len(data) // 4])
    r = vps(
        "--debug",
        "segment",
        clip / "vid.mp4",
        bad,
        "-w",
        weights["pns-plus"],
        "-o",
        tmp_path / "o",
        "--no-overlay",
        "-q",
        "--fps",
        "30",
    )
    assert r.returncode == 3, r.stderr
    assert "--fps 30 applies to frame folders only: 2 video file(s)" in " ".join(r.stderr.split())
    assert "Traceback" in r.stderr and "InputError: " in r.stderr and f"error: {bad}" in r.stderr
