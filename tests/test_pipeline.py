"""The streaming pipeline around the model: source-size post-processing computed only where it can be
non-zero, overlays drawn only around the masks, several videos at once (``--jobs``), the stand-in
model of ``bench_segment.py --model-free``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vpscli.engine.postprocess import SourceUpsampler, bilinear_axis
from vpscli.models.stand_in import StandInModel


def _logits(k: int, h: int, w: int, seed: int, blobs: bool = True) -> torch.Tensor:
    """Logits like a trained model's: a strongly negative background with polyp-like blobs."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    out = -9.0 + 0.5 * torch.randn(k, 1, h, w, generator=g)
    if blobs:
        for j in range(k):
            cy, cx, r = torch.rand(3, generator=g).tolist()
            out[j, 0] += 14.0 * torch.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / (0.01 + 0.05 * r)))
    return out


def _whole(up: SourceUpsampler, logits: torch.Tensor):
    """The reference: every output pixel computed."""
    p = up.upsample(torch.sigmoid(logits[:, 0].float()))
    return (p * 255).to(torch.uint8).numpy(), (p >= up.threshold).numpy(), p.amax(dim=(1, 2)).tolist()


@pytest.mark.parametrize("probs", [True, False])
@pytest.mark.parametrize("threshold", [0.5, 0.02, 1 / 255, 0.0, 1.0])
@pytest.mark.parametrize("out_hw", [(240, 352), (101, 75), (64, 112), (1080, 1920)])
def test_region_results_equal_the_whole_frame(threshold, out_hw, probs):
    in_hw = (64, 112)
    logits = _logits(5, *in_hw, seed=int(threshold * 100) + out_hw[0])
    logits[2] = -12.0  # a clean frame
    logits[3] = _logits(1, *in_hw, seed=1)[0] + 6.0  # a haze of levels 1 to 10 with a peak under 0.5
    logits[4] = logits[3] - 2.6  # a faint haze around levels 1 and 2
    up = SourceUpsampler(in_hw, out_hw, threshold, probs=probs)
    probs_, masks, peaks = _whole(up, logits)
    for j, pred in enumerate(up(logits)):
        if probs:
            assert np.array_equal(pred.prob, probs_[j]), j
        else:
            assert pred.prob is None
        assert np.array_equal(pred.mask, masks[j]), j
        assert pred.area == masks[j].sum()
        if pred.area:
            ys, xs = np.flatnonzero(masks[j].any(1)), np.flatnonzero(masks[j].any(0))
            assert pred.box == (xs[0], ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1)
            assert pred.max_prob == pytest.approx(peaks[j], abs=0)
        else:
            assert pred.box is None
        if probs_[j].any() or masks[j].any():
            assert pred.max_prob == peaks[j]
        else:  # nothing reaches 1/255 nor the threshold: the model map's own peak, an upper bound (to float
            # rounding) below 1/255
            assert peaks[j] <= pred.max_prob * (1 + 1e-6) and pred.max_prob < 1 / 255


def test_without_probability_maps_a_hazy_frame_costs_only_its_peak():
    """A model's faint haze over a polyp-free frame (levels 1 to 30 of 255 everywhere) is computed for the
    probability maps; without them only the few cells near the peak are, and the mask, box, area and peak
    come out the same bit for bit."""
    in_hw, out_hw = (64, 112), (1080, 1920)
    haze = torch.full((2, 1, *in_hw), -4.0)  # p ≈ 0.018: level 4 everywhere
    haze[0, 0, 30:33, 50:53] = -1.0  # a faint spot, p ≈ 0.27: no mask
    haze[1, 0, 10:20, 20:40] = 3.0  # a polyp
    regions = {}
    for probs in (True, False):
        up = SourceUpsampler(in_hw, out_hw, 0.5, probs=probs)
        calls = []
        real = up.upsample
        up.upsample = lambda *a, _r=real, _c=calls, **k: _c.append(a[1:]) or _r(*a, **k)
        regions[probs] = (up(haze), [(r1 - r0) * (c1 - c0) for (r0, r1), (c0, c1) in calls])
    (with_maps, area_maps), (without, area_masks) = regions[True], regions[False]
    assert area_maps == [1080 * 1920] * 2  # the haze reaches level 1 everywhere
    cell = (1080 / 64) * (1920 / 112)  # output pixels per model cell
    assert area_masks[0] <= 5 * 5 * cell  # the spot's 3×3 cells and their neighbours: 0.3 % of the frame
    assert area_masks[1] <= 12 * 22 * cell  # the polyp's 10×20 cells and their neighbours
    for a, b in zip(with_maps, without):
        assert b.prob is None and a.prob is not None and a.prob.max() > 4
        assert np.array_equal(a.mask, b.mask) and (a.box, a.area) == (b.box, b.area)
        assert a.max_prob == b.max_prob  # the upsampled peak, exactly
    assert without[0].area == 0 and 0.2 < without[0].max_prob < 0.3 and without[1].area > 0


def test_a_region_is_computed_bit_for_bit_as_in_the_whole_frame():
    """Every region of every offset and width (vectorised bodies and scalar tails alike) gives the
    whole frame's float values exactly."""
    up = SourceUpsampler((64, 112), (270, 481), 0.5)
    p = torch.sigmoid(_logits(2, 64, 112, seed=3)[:, 0])
    whole = up.upsample(p)
    rng = np.random.default_rng(0)
    for _ in range(60):
        r0, c0 = int(rng.integers(0, 260)), int(rng.integers(0, 470))
        r1, c1 = int(rng.integers(r0 + 1, 271)), int(rng.integers(c0 + 1, 482))
        assert torch.equal(up.upsample(p, (r0, r1), (c0, c1)), whole[:, r0:r1, c0:c1]), (r0, r1, c0, c1)
    for r0, c0 in ((0, 0), (269, 480)):  # regions at the edges read the first and the last input rows
        assert torch.equal(up.upsample(p, (r0, -1), (c0, -1)), whole[:, r0:, c0:])
        assert torch.equal(up.upsample(p, (0, r0 + 1), (0, c0 + 1)), whole[:, : r0 + 1, : c0 + 1])
    assert up.upsample(p, (7, 7), (0, 10)).shape == (2, 0, 10)  # an empty region


def test_upsampling_is_the_half_pixel_bilinear_of_torch():
    logits = _logits(2, 64, 112, seed=5)
    up = SourceUpsampler((64, 112), (480, 640), 0.5)
    p = torch.sigmoid(logits[:, 0])
    ref = F.interpolate(p[:, None], size=(480, 640), mode="bilinear", align_corners=False)[:, 0]
    assert (up.upsample(p) - ref).abs().max() < 1e-5  # the same sampling; the weights are rounded differently


def test_bilinear_axis_weights():
    ax = bilinear_axis(4, 8)
    assert ax.i0.tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert ax.i1.tolist() == [1, 1, 1, 2, 2, 3, 3, 3]  # position 0 reads cell 1 with weight 0
    assert np.allclose(ax.w1.numpy(), [0, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0])
    assert ax.span(2, 2) == (3, 7)  # output positions reading input cell 2
    assert ax.span(0, 3) == (0, 8)
    assert ax.min_cell_weight == 0.75  # cells 1 and 2 get at most 0.75 from any position, 0 and 3 get 1
    assert bilinear_axis(8, 4).min_cell_weight == 0.5  # halving: every cell shares a position equally
    assert bilinear_axis(9, 3).min_cell_weight == 0.0  # a third: cell 0 is read by no position
    # upsampling: some output position lies within half a position of each cell's centre
    assert 1 - 0.5 * 256 / 1080 <= bilinear_axis(256, 1080).min_cell_weight < 1


def test_a_clean_frame_costs_no_upsampling():
    """A polyp-free frame computes no region at all (the common case in a colonoscopy)."""
    up = SourceUpsampler((64, 112), (1080, 1920), 0.5)
    calls = []
    real = up.upsample
    up.upsample = lambda *a, **k: calls.append(a[1:]) or real(*a, **k)
    pred = up(torch.full((1, 1, 64, 112), -10.0))[0]
    assert calls == [] and pred.area == 0 and not pred.prob.any()
    assert pred.max_prob == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item())
    polyp = torch.full((1, 1, 64, 112), -10.0)
    polyp[..., 20:30, 40:56] = 6.0  # 10×16 cells: 2.2 % of the frame
    pred = up(polyp)[0]
    ((rows, cols),) = calls
    assert rows[0] <= pred.box[1] and pred.box[1] + pred.box[3] <= rows[1]
    assert (rows[1] - rows[0]) * (cols[1] - cols[0]) < 0.04 * 1080 * 1920  # the polyp's cells and a margin


def test_overlay_drawn_in_the_mask_box_equals_the_whole_frame():
    import cv2

    from vpscli.render.overlay import draw_overlay
    from vpscli.render.palette import PALETTES

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (270, 480, 3), dtype=np.uint8)
    for trial in range(12):
        pred = np.zeros((270, 480), np.uint8)
        gt = np.zeros_like(pred)
        for m in (pred, pred, gt):
            cv2.ellipse(
                m,
                (int(rng.integers(-20, 500)), int(rng.integers(-20, 290))),
                (int(rng.integers(2, 90)), int(rng.integers(2, 70))),
                float(rng.integers(0, 180)),
                0,
                360,
                1,
                -1,
            )
        pred, gt = pred > 0, gt > 0
        for style in ("fill", "contour", "both", "box"):
            for g in (None, gt):
                union = pred | g if g is not None else pred
                if not union.any():
                    continue
                ys, xs = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
                box = (xs[0], ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1)
                whole = draw_overlay(img, pred, g, style=style, palette=PALETTES["default"])
                boxed = draw_overlay(img, pred, g, style=style, palette=PALETTES["default"], box=box)
                assert np.array_equal(whole, boxed), (trial, style, g is None)
    assert np.array_equal(draw_overlay(img, np.zeros((270, 480), bool), empty=True), img)


@pytest.mark.parametrize("alpha", [0.0, 0.13, 0.4, 0.5, 1.0])
def test_blend_is_the_float32_formula(alpha):
    from vpscli.render.overlay import blend

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    where = rng.random((60, 80)) > 0.4
    colour = (255, 0, 128)
    expected = image.copy()
    px = expected[where].astype(np.float32)
    expected[where] = np.clip(np.rint((1.0 - alpha) * px + alpha * np.asarray(colour, np.float32)), 0, 255)
    for view in (image.copy(), image.copy()[:, :]):
        blend(view, where, colour, alpha)
        assert np.array_equal(view, expected)
    strided = image.copy()
    blend(strided[5:50, 7:70], where[5:50, 7:70], colour, alpha)  # a non-contiguous region of a frame
    assert np.array_equal(strided[5:50, 7:70], expected[5:50, 7:70])
    assert np.array_equal(strided[:5], image[:5])


def test_stand_in_model_marks_a_moving_ellipse(clip, tmp_path):
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    net = StandInModel.like("pns-plus")
    assert net.spec.clip_length == 5 and net.spec.needs_anchor and net.spec.replay_frames() == 0
    seg = Segmenter(net, device="cpu")
    results = list(seg.run(open_source(clip / "vid.mp4")))
    assert len(results) == 11
    areas = [r.mask.mean() for r in results]
    assert all(0.04 < a < 0.12 for a in areas), areas  # π·0.18·0.14 ≈ 0.079 of the frame
    centres = [np.argwhere(r.mask).mean(axis=0) for r in results]
    assert np.linalg.norm(centres[0] - centres[-1]) > 2  # it moves
    assert all(r.max_prob > 0.99 for r in results)
    for r in results:  # outside the ellipse a haze of level 2, rising to the mask's edge
        assert r.prob.min() == 2 and (r.prob == 2).mean() > 0.5 and r.prob[~r.mask].max() <= 127


def _run_dirs(root):
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        masks = {p.name: p.read_bytes() for p in (d / "masks").iterdir()}
        probs = {p.name: p.read_bytes() for p in (d / "probs").iterdir()}
        rows = list(csv.DictReader((d / "frames.csv").open()))
        out[d.name] = (masks, probs, rows, json.loads((d / "run.json").read_text()))
    return out


@pytest.mark.numerics
def test_jobs_write_what_one_video_at_a_time_writes(clip, weights, tmp_path):
    """Two videos and a frame folder, two at a time, sharing one stateful model (CFFM's feature cache): the
    same files as one by one."""
    import shutil

    from vpscli.engine import Segmenter, SegmentOptions, segment_many
    from vpscli.io.sources import discover_sources

    for k in range(2):
        shutil.copy(clip / "vid.mp4", tmp_path / f"v{k}.mp4")
    sources = discover_sources(
        [str(tmp_path / f"v{k}.mp4") for k in range(2)] + [str(clip / "Frame" / "odd")]
    )
    seg = Segmenter("cffm", weights["cffm"], device="cpu")
    runs = {}
    for jobs in (1, 2):
        reports, failures = segment_many(
            seg,
            sources,
            SegmentOptions(out_root=tmp_path / f"j{jobs}", save_prob=True, overlay=jobs == 2),
            jobs=jobs,
        )
        assert not failures and [r.name for r in reports] == [s.name for s in sources]
        runs[jobs] = _run_dirs(tmp_path / f"j{jobs}")
    assert runs[1].keys() == runs[2].keys() and len(runs[1]) == 3
    for name in runs[1]:
        (m1, p1, r1, j1), (m2, p2, r2, j2) = runs[1][name], runs[2][name]
        assert m1 == m2 and p1 == p2 and r1 == r2  # the same computation: the same bytes
        assert j2["status"] == "complete" and j2["numerics"] == j1["numerics"]
    assert sum(int(r["present"]) for _, _, rows, _ in runs[1].values() for r in rows) > 0


def test_an_interrupt_stops_every_running_video(clip, weights, tmp_path):
    import shutil

    from vpscli.engine import Segmenter, SegmentOptions, segment_many
    from vpscli.io.sources import discover_sources

    for k in range(2):
        shutil.copy(clip / "vid.mp4", tmp_path / f"v{k}.mp4")
    sources = discover_sources([str(tmp_path / "v0.mp4"), str(tmp_path / "v1.mp4")])
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu")
    seen = []

    def on_frame(source, result):
        seen.append(source.name)
        if source.name == "v0" and result.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_many(
            seg, sources, SegmentOptions(out_root=tmp_path / "out", overlay=False), on_frame=on_frame, jobs=2
        )
    statuses = {
        d.name: json.loads((d / "run.json").read_text())["status"] for d in (tmp_path / "out").iterdir()
    }
    assert statuses["v0"] == "interrupted"
    assert statuses.get("v1", "interrupted") in ("interrupted", "complete")  # it may have finished first
    reports, failures = segment_many(
        seg, sources, SegmentOptions(out_root=tmp_path / "out", overlay=False, resume=True), jobs=2
    )
    assert not failures and all(r.status == "complete" or r.status == "skipped" for r in reports)
    assert all(
        json.loads((tmp_path / "out" / n / "run.json").read_text())["status"] == "complete"
        for n in ("v0", "v1")
    )


def test_job_placement_helpers_on_the_cpu(monkeypatch):
    import contextlib

    from vpscli.engine import device
    from vpscli.engine.device import Placement, job_stream, jobs_cpu_threads
    from vpscli.engine.overlay_sink import overlay_preset, overlay_threads
    from vpscli.engine.sinks import png_workers

    assert isinstance(job_stream(Placement.on(torch.device("cpu"))), contextlib.nullcontext)
    made = []

    class FakeStream:
        def __init__(self, dev):
            made.append(dev)

    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: ("stream-context", s))
    ctx = job_stream(Placement(torch.device("cuda", 1), torch.bfloat16))
    assert ctx[0] == "stream-context" and made == [torch.device("cuda", 1)]  # its own stream on its device
    assert jobs_cpu_threads(7, 1) == 7 and jobs_cpu_threads(7, 2) == 3 and jobs_cpu_threads(1, 8) == 1
    monkeypatch.setattr(device, "usable_cpus", lambda: 2)
    assert png_workers() == 2 and overlay_preset() == "ultrafast" and overlay_threads() == 1
    monkeypatch.setattr(device, "usable_cpus", lambda: 6)
    assert png_workers() == 3 and overlay_preset() == "superfast" and overlay_threads() is None
    monkeypatch.setattr(device, "usable_cpus", lambda: 16)
    assert png_workers() == 8 and overlay_preset() == "veryfast" and overlay_threads() is None


def test_cli_refuses_zero_jobs(clip, tmp_path):
    from typer.testing import CliRunner

    from vpscli.cli import app

    r = CliRunner().invoke(app, ["segment", str(clip / "vid.mp4"), "-o", str(tmp_path / "o"), "--jobs", "0"])
    assert r.exit_code == 2 and "--jobs must be at least 1" in r.output
    assert not (tmp_path / "o").exists()


def test_stage_clock_times_the_device_without_waiting_for_it(monkeypatch):
    """On the CPU the wall time; on CUDA two events on the stream, read after the pipeline's own wait."""
    import time

    from vpscli.engine.video_run import StageClock

    clock = StageClock(torch.device("cpu"))
    time.sleep(0.02)
    clock.stop()
    assert 0.015 < clock.seconds() < 1.0
    events = []

    class FakeEvent:
        def __init__(self, enable_timing):
            assert enable_timing
            self.recorded = self.waited = False
            events.append(self)

        def record(self):
            self.recorded = True

        def synchronize(self):
            self.waited = True

        def elapsed_time(self, end):
            assert self.recorded and end.recorded and end.waited
            return 12.5  # milliseconds

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    clock = StageClock(torch.device("cuda"))
    assert events[0].recorded and not events[1].recorded
    clock.stop()
    assert events[1].recorded and not events[1].waited  # no wait when the work is issued
    assert clock.seconds() == 0.0125
