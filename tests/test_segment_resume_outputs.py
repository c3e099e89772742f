"""A resumed run keeps the outputs of the run it continues, and a failed run that wrote nothing is redone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vpscli.engine import Segmenter, SegmentOptions, segment_video
from vpscli.io.masks import read_mask
from vpscli.io.sources import open_source


def _stop_at(index):
    def on_frame(result):
        if result.index == index:
            raise KeyboardInterrupt

    return on_frame


def test_resume_without_save_prob_keeps_writing_probs(clip, weights, tmp_path):
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    clean = segment_video(
        seg,
        open_source(clip / "vid.mp4"),
        SegmentOptions(out_root=tmp_path / "clean", save_prob=True, overlay=False),
    )
    assert clean.status == "complete"
    started = SegmentOptions(out_root=tmp_path / "cut", save_prob=True, overlay=False)
    with pytest.raises(KeyboardInterrupt):
        segment_video(seg, open_source(clip / "vid.mp4"), started, on_frame=_stop_at(5))
    cut = tmp_path / "cut" / "vid"
    assert 1 <= len(list((cut / "probs").glob("*.png"))) <= 6
    report = segment_video(
        seg,
        open_source(clip / "vid.mp4"),
        SegmentOptions(out_root=tmp_path / "cut", resume=True, save_prob=False, overlay=False),
    )
    assert report.status == "complete"
    assert any("--save-prob as the run was started" in w for w in report.warnings)
    probs = sorted((cut / "probs").glob("*.png"))
    assert len(probs) == 11
    for p in probs:
        np.testing.assert_array_equal(
            read_mask(p).array, read_mask(tmp_path / "clean" / "vid" / "probs" / p.name).array
        )
    record = json.loads((cut / "run.json").read_text())
    assert record["outputs"]["probs"] == "probs/" and record["status"] == "complete"
    assert any("--save-prob" in n for n in record["notes"])


@pytest.mark.parametrize("resume", [False, True])
def test_a_failed_run_that_wrote_nothing_is_redone(weights, tmp_path, resume):
    """A video cut short before its first frame fails with nothing written; once the user replaces it, the
    same command (with or without --resume) segments it: there is no earlier work to keep or protect."""
    from vpscli.errors import InputError
    from vpscli.synth import SynthConfig, write_clip

    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    write_clip(tmp_path, SynthConfig(frames=30, width=96, height=64, seed=2), "mp4", "full")
    data = (tmp_path / "full.mp4").read_bytes()
    video = tmp_path / "in" / "vid.mp4"
    video.parent.mkdir()
    video.write_bytes(data[: len(data) // 3])
    opts = SegmentOptions(out_root=tmp_path / "out", overlay=False, resume=resume)
    with pytest.raises(InputError, match="no frame could be decoded"):
        segment_video(seg, open_source(video), opts)
    out = tmp_path / "out" / "vid"
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert not list((out / "masks").glob("*.png"))
    shutil.copy(tmp_path / "full.mp4", video)  # the user fixes the input and runs the same command again
    report = segment_video(seg, open_source(video), opts)
    assert report.status == "complete" and report.frames == 30
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_output_root_inside_the_input_folder_is_not_an_input(tmp_path, weights, monkeypatch):
    """`cd study && vps segment . && vps segment . --resume`: the second run does not take vps-out/ (or a
    run folder in it) for a case of frames."""
    from vpscli.cli import main
    from vpscli.errors import InputError
    from vpscli.io.sources import discover_sources
    from vpscli.synth import SynthConfig, write_clip

    study = tmp_path / "study"
    for i in range(2):
        write_clip(study, SynthConfig(frames=6, width=96, height=64, seed=i), "frames", f"case{i}")
    monkeypatch.chdir(study)
    args = ["segment", ".", "-w", str(weights["pns-plus"]), "--no-overlay", "--device", "cpu", "-q"]
    assert main(args) == 0
    assert (study / "vps-out" / "case0" / "run.json").is_file()
    assert [s.name for s in discover_sources(["."])] == ["case0", "case1"]
    assert main(args + ["--resume"]) == 0
    with pytest.raises(InputError, match="vps segment output folder"):
        discover_sources([str(study / "vps-out" / "case0")])
