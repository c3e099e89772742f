"""Test-time augmentation (``vps segment --tta``): the clip and its mirror image, each with a video
state of its own, probabilities averaged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests._models import trained_like
from vpscli.engine import Segmenter, SegmentOptions, segment_video
from vpscli.engine.tta import MirrorAveraged
from vpscli.errors import OutputError
from vpscli.io.sources import open_source
from vpscli.train.calibration import synthetic_frames

SIZE = (64, 96)


def _clips(n: int, t: int, seed: int = 0) -> list[torch.Tensor]:
    frames = (synthetic_frames(SIZE, n * t, seed=seed).float() / 255 - 0.45) / 0.225  # (n·t, 3, H, W)
    return [frames[i * t : (i + 1) * t][None] for i in range(n)]


@pytest.mark.parametrize("name", ["pns-plus", "cffm"])
def test_mirror_average_equals_two_videos_averaged(name):
    """Over three consecutive clips of a stateful model (PNS+ anchor; CFFM's cache of earlier frames),
    the wrapper equals the model run on the video and, separately, on its mirror image."""
    net = trained_like(name, SIZE).eval()
    tta = MirrorAveraged(net)
    t = net.spec.clip_length
    clips = _clips(3, t)
    anchor = clips[0][:, 0] if net.spec.needs_anchor else None
    with torch.no_grad():
        s_tta, s_plain, s_mirror = tta.init_state(), net.init_state(), net.init_state()
        for k, clip in enumerate(clips):
            a = anchor if k == 0 else None
            got, s_tta = tta(clip, s_tta, anchor=a)
            plain, s_plain = net(clip, s_plain, anchor=a)
            mirror, s_mirror = net(clip.flip(-1), s_mirror, anchor=None if a is None else a.flip(-1))
            want = (torch.sigmoid(plain) + torch.sigmoid(mirror).flip(-1)) / 2
            assert torch.allclose(torch.sigmoid(got), want, atol=2e-6)
            # the mirrored stream matters: the average is not the plain prediction
            assert (torch.sigmoid(got) - torch.sigmoid(plain)).abs().max() > 1e-3
    assert s_tta.frames_seen == 3 * t


def test_mirror_symmetric_clip_gives_the_plain_prediction():
    net = trained_like("pns-net", SIZE).eval()
    clip = _clips(1, net.spec.clip_length)[0]
    symmetric = torch.cat([clip[..., : SIZE[1] // 2], clip[..., : SIZE[1] // 2].flip(-1)], -1)
    with torch.no_grad():
        plain, _ = net(symmetric)
        got, _ = MirrorAveraged(net)(symmetric)
    # a mirror-symmetric input and a model without a preferred side give the same map both ways only
    # up to the model's own asymmetry; the average of the two is exactly symmetric
    p = torch.sigmoid(got)
    assert torch.allclose(p, p.flip(-1), atol=2e-6)
    assert not torch.allclose(torch.sigmoid(plain), torch.sigmoid(plain).flip(-1), atol=1e-4)


def test_segment_with_tta_records_it_and_resume_keeps_it(clip, weights, tmp_path):
    plain = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    tta = Segmenter("pns-plus", weights["pns-plus"], device="cpu", tta=True)
    a = [r.max_prob for r in plain.run(open_source(clip / "vid.mp4"))]
    b = [r.max_prob for r in tta.run(open_source(clip / "vid.mp4"))]
    assert len(a) == len(b) == 11 and not np.allclose(a, b, atol=1e-3)
    rep = segment_video(tta, open_source(clip / "vid.mp4"), SegmentOptions(out_root=tmp_path, overlay=False))
    assert rep.status == "complete"
    record = json.loads((tmp_path / "vid" / "run.json").read_text())
    assert record["tta"] is True
    with pytest.raises(OutputError, match="--tta"):
        segment_video(
            plain,
            open_source(clip / "vid.mp4"),
            SegmentOptions(out_root=tmp_path, overlay=False, resume=True),
        )


def test_cli_tta_flag_reaches_the_run(clip, weights, tmp_path):
    from typer.testing import CliRunner

    from vpscli.cli import app

    args = [
        "segment",
        str(clip / "vid.mp4"),
        "-w",
        str(weights["pns-plus"]),
        "--no-overlay",
        "--device",
        "cpu",
        "--min-persistence",
        "1",
    ]
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "tta"), "--tta", "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "plain"), "-q"])
    assert r.exit_code == 0, r.output
    tta = json.loads((tmp_path / "tta" / "vid" / "run.json").read_text())
    plain = json.loads((tmp_path / "plain" / "vid" / "run.json").read_text())
    assert tta["tta"] is True and plain["tta"] is False
    rows = [(tmp_path / k / "vid" / "frames.csv").read_text().splitlines()[1:] for k in ("tta", "plain")]
    assert len(rows[0]) == len(rows[1]) == 11 and rows[0] != rows[1]
