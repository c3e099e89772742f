"""``vps overlay`` end to end: MP4 frame count/size, PNG frames, contact sheet, VFR timecodes, mismatches."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests._media import ffmpeg, make_testsrc
from vpscli.errors import InputError
from vpscli.io.masks import write_mask, write_probability
from vpscli.io.sources import open_source
from vpscli.render.contact_sheet import GAP
from vpscli.render.hud import FrameInfo, draw_hud
from vpscli.render.review import ReviewOptions, output_size, render_review
from vpscli.synth import SynthConfig, write_clip

W, H, N = 96, 64, 12


def vps(*args):
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame 96x64 synthetic clip; GT doubles as the prediction."""
    out = tmp_path_factory.mktemp("clip")
    result = write_clip(out, SynthConfig(frames=N, width=W, height=H, seed=3, text=False), "mp4", "c")
    return result.video, result.gt


def test_mp4_has_source_frame_count_and_size_with_timeline(clip, tmp_path):
    video, gt = clip
    out = tmp_path / "o.mp4"
    r = vps("overlay", video, gt, "--gt", gt, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    src = open_source(out)
    frames = list(src)
    assert len(frames) == N
    # timeline strip: 2 tracks of 8 px + 2 px border = 18 px under the 64 px frame
    assert frames[0].size == (W, H + 18) == output_size(W, H, side_by_side=False, timeline=True, with_gt=True)
    assert abs(float(src.probe().fps) - 25.0) < 1e-6


def test_side_by_side_no_timeline_and_frames_folder(clip, tmp_path):
    video, gt = clip
    r = vps("overlay", video, gt, "--side-by-side", "--no-timeline", "--frames", tmp_path / "png", "-q")
    assert r.returncode == 0, r.stderr
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(N)]
    assert not (gt.parent / "c_overlay.mp4").exists(), "--frames alone writes no MP4"
    frame = open_source(tmp_path / "png")
    assert frame.probe().width == 2 * W and frame.probe().height == H
    # left half is the raw frame: compare with the source (both decoded from the same H.264 file)
    raw = next(iter(open_source(video))).image
    left = next(iter(frame)).image[:, :W]
    assert np.abs(left.astype(int) - raw.astype(int)).max() == 0


def test_contact_sheet_dimensions(clip, tmp_path):
    video, gt = clip
    sheet = tmp_path / "sheet.png"
    r = vps("overlay", video, gt, "--contact-sheet", sheet, "--sheet-frames", "6", "-q")
    assert r.returncode == 0, r.stderr
    import cv2

    img = cv2.imread(str(sheet))
    assert img.shape == (2 * H + 3 * GAP, 4 * W + 5 * GAP, 3)
    r = vps(
        "overlay",
        video,
        gt,
        "--contact-sheet",
        sheet,
        "--sheet-pick",
        "confident",
        "--sheet-frames",
        "3",
        "-q",
    )
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(sheet)).shape == (H + 2 * GAP, 3 * W + 4 * GAP, 3)


def test_count_mismatch_is_an_error_with_both_counts(clip, tmp_path):
    video, gt = clip
    short = tmp_path / "short"
    short.mkdir()
    for p in sorted(gt.glob("*.png"))[:10]:
        (short / p.name).write_bytes(p.read_bytes())
    r = vps("overlay", video, short, "-o", tmp_path / "x.mp4")
    assert r.returncode == 1
    msg = " ".join(r.stderr.split())
    assert "SOURCE has 12 frames" in msg and "MASKS has 10 masks" in msg and "--allow-mismatch" in msg
    assert "Traceback" not in r.stderr and not (tmp_path / "x.mp4").exists()
    r = vps("overlay", video, gt, "--gt", short, "-o", tmp_path / "x.mp4")
    assert r.returncode == 1 and "GT has 10 masks" in " ".join(r.stderr.split())


def test_allow_mismatch_draws_missing_masks_as_no_mask(clip, tmp_path):
    video, gt = clip
    short = tmp_path / "short"
    short.mkdir()
    for p in sorted(gt.glob("*.png"))[:10]:
        (short / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "x.mp4"
    r = vps("overlay", video, short, "-o", out, "--allow-mismatch")
    assert r.returncode == 0, r.stderr
    assert "12 frames" in r.stderr and "10 masks" in " ".join(r.stderr.split())
    assert sum(1 for _ in open_source(out)) == N
    result = render_review(
        video, short, video_out=None, frames_out=tmp_path / "f", options=ReviewOptions(allow_mismatch=True)
    )
    assert result.missing_masks == [10, 11] and result.frames == N


def test_size_mismatch_error_and_resize_note(clip, tmp_path):
    video, _ = clip
    other = tmp_path / "square"
    for i in range(N):
        write_mask(other / f"{i:06d}.png", np.ones((50, 50), bool))
    with pytest.raises(InputError, match="size mismatch.*96x64.*50x50"):
        render_review(video, other, frames_out=tmp_path / "f")
    half = tmp_path / "half"
    for i in range(N):
        write_mask(half / f"{i:06d}.png", np.ones((32, 48), bool))
    result = render_review(video, half, frames_out=tmp_path / "g")
    assert any("resized (nearest)" in n for n in result.notes)


def test_probability_folder_thresholded_and_run_json_read(clip, tmp_path):
    video, _ = clip
    masks = tmp_path / "run" / "masks"
    for i in range(N):
        p = np.zeros((H, W))
        p[10:30, 10:40] = 0.3 if i < 6 else 0.8
        write_probability(masks / f"{i:06d}.png", p)
    (tmp_path / "run" / "run.json").write_text('{"model": "pns_plus", "threshold": 0.5}')
    quiet = dict(timeline=False, info=False, timecode=False)  # keep the HUD off the probed pixel
    result = render_review(video, masks, frames_out=tmp_path / "f", options=ReviewOptions(**quiet))
    assert result.probability and result.threshold == 0.5 and result.run.model == "pns_plus"
    low = render_review(
        video, masks, frames_out=tmp_path / "g", options=ReviewOptions(threshold=0.2, **quiet)
    )
    assert low.threshold == 0.2
    import cv2

    # frame 2 (p = 0.3): nothing above 0.5, drawn above 0.2
    a = cv2.imread(str(tmp_path / "f" / "000002.png"))[20, 25]
    b = cv2.imread(str(tmp_path / "g" / "000002.png"))[20, 25]
    raw = cv2.cvtColor(list(open_source(video))[2].image, cv2.COLOR_RGB2BGR)[20, 25]
    assert np.array_equal(a, raw) and not np.array_equal(b, raw)


def test_a_run_folder_is_read_through_its_masks_folder(clip, tmp_path):
    video, gt = clip
    run = tmp_path / "out" / "c"
    (run / "masks").mkdir(parents=True)
    for i, p in enumerate(sorted(gt.glob("*.png"))):
        (run / "masks" / f"{i:06d}.png").write_bytes(p.read_bytes())
    (run / "run.json").write_text('{"model": "pns-plus", "threshold": 0.5, "status": "complete"}')
    r = vps("overlay", video, run, "--frames", tmp_path / "a", "--no-timeline", "-q")
    assert r.returncode == 0, r.stderr
    r = vps("overlay", video, run / "masks", "--frames", tmp_path / "b", "--no-timeline", "-q")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert len(names) == N and names == sorted(p.name for p in (tmp_path / "b").glob("*.png"))
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    r = vps("overlay", video, run, "-q")  # the default MP4 goes beside the masks, as for masks/
    assert r.returncode == 0 and (run / "c_overlay.mp4").is_file(), r.stderr


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory):
    """35 frames: 10 at 10 fps then 25 at 25 fps, with 35 empty masks."""
    d = tmp_path_factory.mktemp("vfr")
    make_testsrc(d / "a.mp4", 1, 10, extra=["-video_track_timescale", "1000"])
    make_testsrc(d / "b.mp4", 1, 25, extra=["-video_track_timescale", "1000"])
    (d / "list.txt").write_text("file a.mp4\nfile b.mp4\n")
    ffmpeg("-f", "concat", "-i", str(d / "list.txt"), "-c", "copy", str(d / "vfr.mp4"))
    for i in range(35):
        write_mask(d / "masks" / f"{i:06d}.png", np.zeros((120, 160), bool))
    return d / "vfr.mp4", d / "masks"


def _text(img, rect):
    x, y, w, h = rect
    return np.all(img[y : y + h, x : x + w] > 200, axis=2)


def test_vfr_timecodes_come_from_true_timestamps(vfr_clip, tmp_path):
    video, masks = vfr_clip
    stamps = [f.timestamp for f in open_source(video)]
    assert stamps[12] - stamps[0] == pytest.approx(1.08, abs=2e-3)  # a CFR guess (25 fps avg) would say 0.48
    r = vps(
        "overlay",
        video,
        masks,
        "--no-info",
        "--no-timeline",
        "--frames",
        tmp_path / "png",
        "-o",
        tmp_path / "o.mp4",
        "-q",
    )
    assert r.returncode == 0, r.stderr
    rect = draw_hud(np.zeros((120, 160, 3), np.uint8), FrameInfo(12, 35, stamps[12]), details=False)[
        "timecode"
    ]
    import cv2

    def png(i):
        return cv2.cvtColor(cv2.imread(str(tmp_path / "png" / f"{i:06d}.png")), cv2.COLOR_BGR2RGB)

    for i in (0, 5, 12, 30):
        expected = np.zeros((120, 160, 3), np.uint8)
        draw_hud(expected, FrameInfo(i, 35, stamps[i]), details=False)
        assert np.array_equal(_text(png(i), rect), _text(expected, rect)), f"frame {i}"
    wrong = np.zeros((120, 160, 3), np.uint8)
    draw_hud(wrong, FrameInfo(12, 35, 12 / 25), details=False)
    assert not np.array_equal(_text(png(12), rect), _text(wrong, rect))
    # the decoded MP4: the digits region is drawn and differs between frames
    decoded = [f.image for f in open_source(tmp_path / "o.mp4")]
    assert len(decoded) == 35
    region = [_text(decoded[i], rect) for i in (9, 10, 11)]
    assert all(r.sum() > 20 for r in region)
    assert not np.array_equal(region[0], region[1]) and not np.array_equal(region[1], region[2])
    # and the MP4 plays each frame at the source frame's time (not at a constant average rate)
    np.testing.assert_allclose(_pts_seconds(tmp_path / "o.mp4"), stamps, atol=1e-3)


def _pts_seconds(path) -> list[float]:
    """Presentation time of every frame, decoded by PyAV (independent of vps's reader)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        start = stream.start_time or 0
        return [float((f.pts - start) * stream.time_base) for f in c.decode(stream)]


def _partial_segment_run(folder, n_masks: int, decoded: int, expected: int):
    """The layout vps segment leaves for a truncated source: masks 0..n-1, run.json status partial."""
    import json

    for i in range(n_masks):
        m = np.zeros((120, 160), bool)
        m[40:80, 50:90] = True
        write_mask(folder / "masks" / f"{i:06d}.png", m)
    (folder / "run.json").write_text(
        json.dumps(
            {
                "status": "partial",
                "model": "pns-plus",
                "threshold": 0.5,
                "frames": decoded,
                "partial": {
                    "frames_expected": expected,
                    "frames_decoded": decoded,
                    "reason": "the source is truncated or damaged",
                },
            }
        )
    )
    return folder / "masks"


def test_overlay_of_a_truncated_source_with_its_segment_masks(tmp_path):
    from tests._media import make_truncated_clip

    _, cut = make_truncated_clip(tmp_path)
    decoded = sum(1 for _ in open_source(cut))
    packets = open_source(cut).probe().frame_count
    assert decoded < packets < 100, "precondition: fewer frames decode than there are packets"
    masks = _partial_segment_run(tmp_path / "seg" / "cut", decoded, decoded, 100)
    out = tmp_path / "o.mp4"
    r = vps("overlay", cut, masks, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]  # shown despite -q
    assert any("partial run" in w and f"({decoded} of 100 frames)" in w for w in warnings), r.stderr
    assert any(f"decoding stopped at frame {decoded} of 100" in w for w in warnings), r.stderr
    probe = open_source(out).probe()
    assert probe.frame_count == decoded and probe.fps == 25 and not probe.vfr
    # a mask missing inside the run: refused, naming the frame
    (masks / "000003.png").unlink()
    r = vps("overlay", cut, masks, "-o", tmp_path / "gap.mp4")
    assert r.returncode == 1 and "no mask for frame 3 but has one for frame 4" in " ".join(r.stderr.split())
    assert not (tmp_path / "gap.mp4").exists()
    # masks that stop before the decodable frames do: found while decoding, nothing written
    short = _partial_segment_run(tmp_path / "seg2" / "cut", decoded - 2, decoded, 100)
    r = vps("overlay", cut, short, "-o", tmp_path / "short.mp4")
    msg = " ".join(r.stderr.split())
    assert r.returncode == 1 and f"more than the {decoded - 2} frames MASKS has masks for" in msg
    assert not (tmp_path / "short.mp4").exists() and not list(tmp_path.glob(".*partial*"))
    result = render_review(
        cut, short, frames_out=tmp_path / "png", options=ReviewOptions(allow_mismatch=True)
    )
    assert result.frames == decoded and result.missing_masks == [decoded - 2, decoded - 1]


def test_count_mismatch_fix_points_to_resume_for_an_unfinished_run(clip, tmp_path):
    import json

    video, gt = clip
    run = tmp_path / "run"
    for p in sorted(gt.glob("*.png"))[:7]:
        (run / "masks").mkdir(parents=True, exist_ok=True)
        (run / "masks" / p.name).write_bytes(p.read_bytes())
    (run / "run.json").write_text(json.dumps({"status": "interrupted", "frames": 7}))
    with pytest.raises(InputError, match="did not finish: complete it with --resume"):
        render_review(video, run / "masks", frames_out=tmp_path / "f")
    result = render_review(
        video, run / "masks", frames_out=tmp_path / "f", options=ReviewOptions(allow_mismatch=True)
    )
    assert any("was interrupted after 7 frames" in w for w in result.warnings)


def test_bad_options_are_usage_errors(clip, tmp_path):
    video, gt = clip
    r = vps("overlay", video, gt, "--style", "glow", "-o", tmp_path / "x.mp4")
    assert r.returncode == 2 and "--style" in r.stderr
    r = vps("overlay", video, gt, "--alpha", "2", "-o", tmp_path / "x.mp4")
    assert r.returncode == 2 and "--alpha" in r.stderr
    r = vps("overlay", video, tmp_path / "nope", "-o", tmp_path / "x.mp4")
    assert r.returncode == 1 and "nope" in r.stderr


def test_default_output_beside_the_masks_folder(clip, tmp_path):
    video, gt = clip
    masks = tmp_path / "c" / "masks"
    masks.mkdir(parents=True)
    for p in gt.glob("*.png"):
        (masks / p.name).write_bytes(p.read_bytes())
    r = vps("overlay", video, masks, "--style", "box", "--palette", "colorblind", "-q")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "c" / "c_overlay.mp4"
    assert out.is_file() and sum(1 for _ in open_source(out)) == N


def test_frame_folder_source_with_masks_named_by_frame(tmp_path):
    import cv2

    cfg = SynthConfig(frames=5, width=W, height=H, seed=1, text=False)
    res = write_clip(tmp_path / "d", cfg, "frames", "case")
    frames_dir, masks = tmp_path / "frames", tmp_path / "masks"
    frames_dir.mkdir()
    masks.mkdir()
    for i in range(5):  # frame names that are not indices: case_1.png ... case_5.png
        (frames_dir / f"case_{i + 1}.png").write_bytes((res.frames / f"{i:06d}.png").read_bytes())
        (masks / f"case_{i + 1}.png").write_bytes((res.gt / f"{i:06d}.png").read_bytes())
    result = render_review(
        frames_dir,
        masks,
        masks,
        frames_out=tmp_path / "out",
        options=ReviewOptions(style="fill", alpha=1.0, info=False, timecode=False, timeline=False),
    )
    assert result.frames == 5 and not result.missing_masks
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"case_{i}.png" for i in range(1, 6)]
    gt0 = cv2.imread(str(masks / "case_1.png"), 0) > 127
    out0 = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "case_1.png")), cv2.COLOR_BGR2RGB)
    ys, xs = np.nonzero(gt0)
    inside = (ys[len(ys) // 2], xs[len(xs) // 2])
    assert tuple(out0[inside]) == (255, 255, 0), "prediction = GT, so the polyp is overlap-yellow"


def test_overlay_refuses_masks_of_another_video(tmp_path, weights):
    """Two clips of the same length and size: the masks of a run over one are not drawn over the other."""
    from vpscli.engine import Segmenter, SegmentOptions, segment_video
    from vpscli.errors import InputError
    from vpscli.io.sources import open_source
    from vpscli.render.review import ReviewOptions, render_review
    from vpscli.synth import SynthConfig, write_clip

    for seed, name in ((1, "a"), (2, "b")):
        write_clip(tmp_path, SynthConfig(frames=6, width=96, height=64, seed=seed), "mp4", name)
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    segment_video(
        seg, open_source(tmp_path / "a.mp4"), SegmentOptions(out_root=tmp_path / "out", overlay=False)
    )
    masks = tmp_path / "out" / "a"
    with pytest.raises(InputError, match="made from another video"):
        render_review(tmp_path / "b.mp4", masks, video_out=tmp_path / "wrong.mp4")
    assert not (tmp_path / "wrong.mp4").exists()
    assert render_review(tmp_path / "a.mp4", masks, video_out=tmp_path / "right.mp4").frames == 6
    drawn = render_review(
        tmp_path / "b.mp4",
        masks,
        video_out=tmp_path / "forced.mp4",
        options=ReviewOptions(allow_mismatch=True),
    )
    assert drawn.frames == 6
