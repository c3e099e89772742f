"""`vps train` core: sources, windows, augmentation, loss, schedule, data, loop, resume, log, CLI.

Models run at 64×64 on the CPU on tiny synthetic clips (``write_clip``); PNS-Net is used for
the loop tests because it is the cheapest model to step.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from vpscli.errors import InputError, OutputError, UsageError
from vpscli.models import build_model, get_spec
from vpscli.models.cffm import reference_frames
from vpscli.synth import SynthConfig, write_clip
from vpscli.train import TrainConfig, train
from vpscli.train.augment import AugmentConfig, augment_batch, draw_clip_augment
from vpscli.train.dataset import TrainSamples
from vpscli.train.log import LOG_COLUMNS
from vpscli.train.loss import dice_loss, segmentation_loss
from vpscli.train.schedule import poly_warmup_lr
from vpscli.train.snapshot import load_snapshot
from vpscli.train.sources import discover_source
from vpscli.train.store import build_store, store_size
from vpscli.train.validate import validate
from vpscli.train.windows import window_for

SIZE = (64, 64)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Three stills with a bright disc and its mask."""
    root = tmp_path_factory.mktemp("images")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(3):
        img = np.full((90, 120, 3), 60, np.uint8)
        mask = np.zeros((90, 120), np.uint8)
        cv2.circle(img, (40 + 10 * i, 45), 15, (220, 120, 90), -1)
        cv2.circle(mask, (40 + 10 * i, 45), 15, 255, -1)
        cv2.imwrite(str(root / "images" / f"im{i}.jpg"), img)
        cv2.imwrite(str(root / "masks" / f"im{i}.png"), mask)
    return root


@pytest.fixture(scope="module")
def negative_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("neg")
    (root / "Frame" / "seq1").mkdir(parents=True)
    for i in (1, 2, 10):  # natural order: 1, 2, 10
        cv2.imwrite(
            str(root / "Frame" / "seq1" / f"seq1_img{i}.jpg"), np.full((70, 90, 3), 30 * i % 255, np.uint8)
        )
    return root


# ---------------------------------------------------------------- sources and windows


def test_sources_recognise_the_three_kinds(video_dir, image_dir, negative_dir):
    video = discover_source(video_dir)
    assert video.kind == "video" and [s.name for s in video.sequences] == ["case0", "case1"]
    assert all(len(s) == 12 and s.masks[3].parent.name == s.name for s in video.sequences)
    images = discover_source(image_dir)
    assert images.kind == "image" and len(images.sequences) == 3 and images.n_frames == 3
    neg = discover_source(negative_dir)
    assert neg.kind == "negative" and neg.sequences[0].masks == (None, None, None)
    assert [p.name for p in neg.sequences[0].frames] == ["seq1_img1.jpg", "seq1_img2.jpg", "seq1_img10.jpg"]


def test_sources_accept_a_frame_folder_given_directly(video_dir, negative_dir):
    """``DIR/Frame`` (as ``TestDataset/Frame``): the cases of DIR, masks from ``DIR/GT``; negatives without it."""
    direct = discover_source(video_dir / "Frame")
    via_root = discover_source(video_dir)
    assert (
        direct.kind == "video"
        and direct.sequences == via_root.sequences
        and direct.root == video_dir / "Frame"
    )
    neg = discover_source(negative_dir / "Frame")
    assert neg.kind == "negative" and neg.sequences == discover_source(negative_dir).sequences


def test_sources_errors(tmp_path, video_dir):
    with pytest.raises(InputError, match="data folder not found"):
        discover_source(tmp_path / "missing")
    (tmp_path / "train").mkdir()
    with pytest.raises(InputError, match="pass one split"):
        discover_source(tmp_path)
    broken = tmp_path / "broken"
    write_clip(broken, SynthConfig(frames=3, width=64, height=64), "frames", "c")
    (broken / "GT" / "c" / "000001.png").unlink()
    with pytest.raises(InputError, match="no mask for frame 000001.png"):
        discover_source(broken)


def test_windows_per_model():
    cffm = window_for(get_spec("cffm"))
    assert cffm.positions == (0, 3, 6, 9) and cffm.steps == ((0, 3, 6, 9),) and cffm.span == 10
    assert reference_frames(9) == (0, 3, 6)  # the target sees exactly its t−9, t−6, t−3 in the step
    aen = window_for(get_spec("aen-cffm"))
    assert aen.n_frames == 12 and aen.steps[3] == (9, 10, 11) and not aen.needs_anchor
    assert window_for(get_spec("aen-cffm"), aen_clips=2).steps == ((0, 1, 2), (3, 4, 5))
    pns = window_for(get_spec("pns-plus"))
    assert pns.positions == (0, 1, 2, 3, 4) and pns.needs_anchor and pns.columns(0) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("backbone", ["res2net50", "efficientnet-lite2"])
@pytest.mark.parametrize("name", ["cffm", "aen-cffm", "pns-plus", "aen-pns-plus", "pns-net"])
def test_training_feed_reaches_every_parameter(name, backbone):
    """The window's steps use every branch: CFFM references, AEN memory (2 clips), PNS+ anchor; on
    either backbone (the necks take its channels)."""
    from vpscli.train.step import sample_loss

    torch.manual_seed(0)
    model = build_model(name, backbone=backbone, input_size=SIZE).train()
    window = window_for(model.spec, aen_clips=2)
    n = window.n_frames
    batch = {
        "frames": torch.rand(1, n, 3, *SIZE),
        "masks": (torch.rand(1, n, 1, *SIZE) > 0.5).float(),
        "anchor": torch.rand(1, 3, *SIZE),
    }
    loss, bce, dice = sample_loss(model, batch, window)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(5 * bce.item() + 2 * dice.item(), rel=1e-5)
    dead = [k for k, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, dead[:5]


# ---------------------------------------------------------------- augmentation and samples


def _still():
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[10:30, 20:50] = (200, 100, 50)
    mask = frame[..., 0] > 0
    return frame, mask


def augment_clip(frame, mask, n, kind, out_hw, rng, cfg, device="cpu"):
    """One still repeated ``n`` times, augmented as a training sample on ``device``:
    ``(frames (n, H, W, 3), masks (n, H, W))`` as numpy."""
    params = draw_clip_augment(rng, n, kind, frame.shape[:2], out_hw, cfg)
    f = torch.from_numpy(frame).permute(2, 0, 1)[None, None].expand(1, n, -1, -1, -1).to(device)
    m = torch.from_numpy(mask.astype(np.uint8) * 255)[None, None].expand(1, n, -1, -1).to(device)
    x, y = augment_batch(f, m, [params], out_hw)
    return x[0].permute(0, 2, 3, 1).cpu().numpy(), y[0, :, 0].cpu().numpy()


def test_video_augmentation_is_clip_consistent():
    frame, mask = _still()
    cfg = AugmentConfig(highlights=0.0)
    blurred = 0
    for seed in range(8):
        frames, masks = augment_clip(frame, mask, 4, "video", (48, 64), np.random.default_rng(seed), cfg)
        assert frames.shape == (4, 48, 64, 3) and masks.shape == (4, 48, 64) and frames.dtype == np.float32
        assert set(np.unique(masks)) <= {0.0, 1.0} and masks[0].any()
        assert 0 <= frames.min() and frames.max() <= 1
        for i in range(1, 4):  # the same geometry, colour and blur on every frame
            np.testing.assert_array_equal(masks[i], masks[0])
            np.testing.assert_allclose(frames[i], frames[0], atol=1e-6)
        blurred += (
            draw_clip_augment(np.random.default_rng(seed), 4, "video", (60, 80), (48, 64), cfg).blur_sigma > 0
        )
    assert blurred >= 1  # the blur branch ran (p = 0.2 per clip; seeds 0–7 draw it)


def test_image_pseudo_clips_move_per_frame_and_masks_follow():
    frame, mask = _still()
    frames, masks = augment_clip(
        frame, mask, 4, "image", (48, 64), np.random.default_rng(0), AugmentConfig(highlights=0.0, blur=0.0)
    )
    assert all(not np.array_equal(masks[i], masks[0]) for i in range(1, 4))
    for f, m in zip(frames, masks):  # the mask sits where the warped polyp is
        red = f[..., 0] > f[..., 2] + 0.2
        assert (red & (m > 0)).sum() / max(1, (red | (m > 0)).sum()) > 0.8


def test_no_augmentation_is_a_resize():
    frame, mask = _still()
    frames, masks = augment_clip(
        frame, mask, 1, "video", (30, 40), np.random.default_rng(0), AugmentConfig(enabled=False)
    )
    expected = cv2.resize(frame, (40, 30), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    # OpenCV interpolates with 5-bit fixed-point weights; kornia exactly (half a level apart at most here)
    np.testing.assert_allclose(frames[0], expected, atol=1.5 / 255)
    assert masks[0, 5:15, 10:25].all() and not masks[0, 20:, :].any()


def test_highlights_are_drawn_per_frame_where_drawn():
    frame = np.full((60, 80, 3), 80, np.uint8)
    cfg = AugmentConfig(
        flip=0,
        scale=(1, 1),
        rotate=0,
        shift=0,
        brightness=0,
        contrast=0,
        saturation=0,
        channel_gain=0,
        blur=0,
        highlights=0.5,
    )
    rng = np.random.default_rng(4)
    params = draw_clip_augment(rng, 6, "video", (60, 80), (60, 80), cfg)
    lit = params.highlights[:, 0, 2] > 0
    assert 0 < lit.sum() < 6  # some frames have highlights, others not (p = 0.5 each)
    x, _ = augment_batch(
        torch.from_numpy(frame).permute(2, 0, 1)[None, None].expand(1, 6, -1, -1, -1).contiguous(),
        None,
        [params],
        (60, 80),
    )
    for i in range(6):
        bright = x[0, i].mean(0) > 90 / 255
        assert bool(bright.any()) == bool(lit[i])
        if lit[i]:  # the first spot's centre is near white (0.98 blended in)
            cx, cy = params.highlights[i, 0, :2].astype(int)
            assert float(x[0, i, :, cy, cx].min()) > 0.6
        else:
            torch.testing.assert_close(x[0, i], torch.full_like(x[0, i], 80 / 255), atol=1e-5, rtol=0)


def test_samples_shapes_negatives_and_determinism(video_dir, image_dir, negative_dir):
    sources = [discover_source(d) for d in (video_dir, image_dir, negative_dir)]
    window = window_for(get_spec("pns-plus"))
    store, cached = build_store(sources, store_size(SIZE))
    assert (
        not cached and store.frames.shape == (2 * 12 + 3 + 3, 3, 88, 88) and store.masks.dtype == torch.uint8
    )
    samples = TrainSamples(store, window, SIZE, seed=3)
    # 12-frame cases / 5 frames per sample → 2 slots each; 3 stills; 3 negative frames → 1 slot.
    assert len(samples) == 2 * 2 + 3 + 1
    batch = samples.batch(range(len(samples)))
    assert batch["frames"].shape == (8, 5, 3, *SIZE) and batch["masks"].shape == (8, 5, 1, *SIZE)
    assert batch["anchor"].shape == (8, 3, *SIZE)
    kinds = [samples.sequences[samples.order[k].sequence].kind for k in range(len(samples))]
    for k, kind in enumerate(kinds):
        if kind == "negative":
            assert float(batch["masks"][k].sum()) == 0
    assert any(float(batch["masks"][k].sum()) > 0 for k, kind in enumerate(kinds) if kind == "image")
    # A sample does not depend on its batch-mates or on where it sits in the batch.
    again = TrainSamples(store, window, SIZE, seed=3)
    one = again.batch([2])
    torch.testing.assert_close(one["frames"][0], batch["frames"][2], rtol=0, atol=1e-6)
    torch.testing.assert_close(one["masks"][0], batch["masks"][2], rtol=0, atol=0)
    samples.set_epoch(1)
    assert samples.order != again.order


def test_store_cache_is_reused_and_follows_the_files(tmp_path, video_dir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(video_dir, data)
    sources = [discover_source(data)]
    first, cached = build_store(sources, (64, 64), tmp_path / "cache")
    assert not cached and len(list((tmp_path / "cache").glob("*.npy"))) == 2
    second, cached = build_store(sources, (64, 64), tmp_path / "cache")
    assert cached and torch.equal(first.frames, second.frames) and torch.equal(first.masks, second.masks)
    fresh, _ = build_store(sources, (64, 64), None)  # no cache: the same arrays
    assert torch.equal(first.frames, fresh.frames)
    # A frame rewritten on disk (new content, new mtime) gives a new key: decoded again.
    frame = sorted((data / "Frame" / "case0").iterdir())[0]
    cv2.imwrite(str(frame), np.zeros((96, 128, 3), np.uint8))
    os.utime(frame, ns=(1, 1))
    third, cached = build_store([discover_source(data)], (64, 64), tmp_path / "cache")
    assert not cached and third.key != first.key and int(third.frames[0].max()) == 0
    # A damaged cache file is rebuilt, not trusted.
    for f in (tmp_path / "cache").glob("*.frames.npy"):
        f.write_bytes(b"broken")
    _, cached = build_store([discover_source(data)], (64, 64), tmp_path / "cache")
    assert not cached


def test_two_runs_can_build_the_same_store_at_once(tmp_path, video_dir):
    """Two trainings started together on the same data both build the cache (each under its own
    temporary names), instead of one failing on the other's renamed file."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    sources = [discover_source(video_dir)]
    both_decoded = threading.Barrier(2, timeout=30)

    def build(_):
        # Both builds hold their decoded temporary files before either renames its own.
        return build_store(
            sources,
            (32, 32),
            tmp_path / "cache",
            threads=1,
            progress=lambda n, total: n == total and both_decoded.wait(),
        )

    with ThreadPoolExecutor(2) as pool:
        (a, cached_a), (b, cached_b) = pool.map(build, range(2))
    assert not cached_a and not cached_b and torch.equal(a.frames, b.frames)
    assert sorted(p.name.split(".", 1)[1] for p in (tmp_path / "cache").iterdir()) == [
        "frames.npy",
        "json",
        "masks.npy",
    ]  # no temporary file left behind
    assert build_store(sources, (32, 32), tmp_path / "cache")[1]


def test_store_keeps_mask_coverage(tmp_path, image_dir):
    """Masks are stored as coverage (area resize), so the augmented mask's area matches the source's."""
    store, _ = build_store([discover_source(image_dir)], (45, 60))
    cover = store.masks[0].float().sum() / 255
    src = cv2.imread(str(image_dir / "masks" / "im0.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert float(cover) == pytest.approx(src.sum() * (45 * 60) / (90 * 120), rel=0.02)


# ---------------------------------------------------------------- loss and schedule


def test_loss_is_5_bce_plus_2_dice_by_hand():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]]).view(1, 1, 1, 2, 2)
    target = torch.tensor([[0.0, 1.0], [0.0, 0.0]]).view(1, 1, 1, 2, 2)
    p = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1)), 1 / (1 + math.exp(-1))]
    t = [0, 1, 0, 0]
    bce = -sum(ti * math.log(pi) + (1 - ti) * math.log(1 - pi) for pi, ti in zip(p, t)) / 4
    dice = 1 - (2 * p[1] + 1) / (sum(p) + 1 + 1)
    total, got_bce, got_dice = segmentation_loss(logits, target)
    assert got_bce.item() == pytest.approx(bce, rel=1e-5)
    assert got_dice.item() == pytest.approx(dice, rel=1e-5)
    assert total.item() == pytest.approx(5 * bce + 2 * dice, rel=1e-5)
    # Dice is per frame, then averaged: an empty frame with an empty prediction costs ~0.
    empty = dice_loss(torch.full((2, 4, 4), -30.0), torch.zeros(2, 4, 4))
    assert empty.item() == pytest.approx(0.0, abs=1e-6)


def test_poly_schedule_with_warmup():
    lr = lambda s: poly_warmup_lr(s, total_steps=110, base_lr=1e-4, warmup_steps=10)  # noqa: E731
    assert lr(0) == pytest.approx(1e-5) and lr(4) == pytest.approx(5e-5) and lr(9) == pytest.approx(1e-4)
    assert lr(10) == pytest.approx(1e-4)
    assert lr(60) == pytest.approx(1e-4 * 0.5**0.9)
    assert lr(109) == pytest.approx(1e-4 * 0.01**0.9) and lr(110) == 0.0
    assert poly_warmup_lr(0, 10, 1e-3, 0) == pytest.approx(1e-3)


# ---------------------------------------------------------------- the loop


def _cfg(tmp_path, data, **kw):
    base = dict(
        model="pns-net",
        data=[str(d) for d in data],
        out=str(tmp_path / "run"),
        input_size=SIZE,
        batch=1,
        device="cpu",
        log_every=1,
        save_every=1000,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_overfits_one_clip(tmp_path):
    one = tmp_path / "one"
    write_clip(one, SynthConfig(frames=5, width=64, height=64, seed=7, text=False), "frames", "c")
    result = train(_cfg(tmp_path, [one], iters=30, lr=1e-3, warmup=0, augment=False, clip_grad=5.0))
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f) if r["kind"] == "train"]
    assert result.finished and result.step == 30 and len(losses) == 30
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    # Measured: 4.9 → 3.7 (BCE falls first; Dice follows later on a small polyp).
    assert last < 0.85 * first and losses[-1] < losses[0] - 1.0, (first, last)


@pytest.mark.numerics
def test_resume_matches_an_uninterrupted_run(tmp_path, video_dir, image_dir):
    data = [video_dir, image_dir]  # 2·2 + 3 = 7 samples, batch 2 → 3 steps per epoch: resume crosses an epoch
    train(_cfg(tmp_path / "a", data, iters=5, batch=2, seed=1))
    part = train(_cfg(tmp_path / "b", data, iters=5, batch=2, seed=1, stop_after=4))
    assert not part.finished and part.step == 4
    with pytest.raises(OutputError, match="already holds a run"):
        train(_cfg(tmp_path / "b", data, iters=5, batch=2, seed=1))
    with pytest.raises(UsageError, match="same --model"):
        train(_cfg(tmp_path / "b", data, iters=5, batch=2, seed=1, resume=True, model="pns-plus"))
    with pytest.raises(UsageError, match="--seed differ"):
        train(_cfg(tmp_path / "b", data, iters=5, batch=2, seed=2, resume=True))
    resumed = train(_cfg(tmp_path / "b", data, iters=5, batch=2, seed=1, resume=True))
    assert resumed.finished and resumed.step == 5
    a, b = (
        load_snapshot(tmp_path / "a" / "run" / "checkpoint.pt"),
        load_snapshot(tmp_path / "b" / "run" / "checkpoint.pt"),
    )
    assert a["step"] == b["step"] == 5
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=0, msg=k)
    for pid, sa in a["optimizer"]["state"].items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(sa[key], b["optimizer"]["state"][pid][key], rtol=0, atol=0)
    with open(tmp_path / "b" / "run" / "log.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5]


def test_snapshot_every_n_steps(tmp_path, video_dir, monkeypatch):
    from vpscli.train import outputs

    saved = []
    real = outputs.save_snapshot
    monkeypatch.setattr(
        outputs, "save_snapshot", lambda path, **kw: saved.append(kw["step"]) or real(path, **kw)
    )
    train(_cfg(tmp_path, [video_dir], iters=5, save_every=2))
    assert saved == [2, 4, 5]  # every 2 steps, and at the end


def test_run_folder_contents(tmp_path, video_dir):
    train(
        _cfg(tmp_path, [video_dir], iters=2, val=[str(video_dir)], val_max_frames=4, log_every=1, val_every=1)
    )
    run = tmp_path / "run"
    snap = load_snapshot(run / "checkpoint.pt")
    assert {"format", "step", "model", "optimizer", "torch_rng", "config", "best"} <= set(snap)
    assert (
        snap["step"] == 2
        and snap["config"]["model"] == "pns-net"
        and snap["config"]["input_size"] == [64, 64]
    )
    from safetensors import safe_open

    for name in ("last.safetensors", "best.safetensors"):
        with safe_open(str(run / name), "pt") as f:
            meta = f.metadata()
        assert meta["model"] == "pns-net" and meta["input_size"] == "[64, 64]" and meta["format"] == "vps"
        assert set(json.loads(meta["val_metrics"])) >= {"maxDice", "meanDice", "Smeasure", "MAE"}
    model = build_model("pns-net", input_size=SIZE)
    from vpscli.models import load_checkpoint

    load_checkpoint(model, run / "best.safetensors")  # loads strictly into the model
    with open(run / "log.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == LOG_COLUMNS
    assert [r["kind"] for r in rows] == ["train", "val", "train", "val"]
    val = rows[-1]
    for key in ("val_maxDice", "val_meanDice", "val_Smeasure", "val_MAE"):
        assert 0.0 <= float(val[key]) <= 1.0
    png = cv2.imread(str(run / "curves.png"))
    assert png is not None and png.shape[0] > 100 and (png < 250).any()


def test_best_checkpoint_follows_the_validation_metric(tmp_path, video_dir, monkeypatch):
    from vpscli.train import outputs
    from vpscli.train.validate import ValidationResult

    scripted = iter([0.2, 0.6, 0.4])

    def fake_validate(model, sources, device, amp, max_frames, backend):
        v = next(scripted)
        return ValidationResult(
            {"maxDice": v, "meanDice": v, "Smeasure": v, "MAE": 1 - v, "maxIoU": v}, 10, 1
        )

    monkeypatch.setattr(outputs, "validate", fake_validate)
    result = train(_cfg(tmp_path, [video_dir], iters=3, val=[str(video_dir)], val_every=1))
    assert result.best["step"] == 2 and result.best["value"] == 0.6
    from safetensors import safe_open

    with safe_open(str(tmp_path / "run" / "best.safetensors"), "pt") as f:
        assert f.metadata()["steps"] == "2"


def test_validation_scores_and_negatives(tmp_path, video_dir, negative_dir):
    from vpscli.train.validate import validate

    torch.manual_seed(0)
    model = build_model("cffm", input_size=SIZE)
    result = validate(
        model, [discover_source(video_dir), discover_source(negative_dir)], torch.device("cpu"), max_frames=6
    )
    assert result.n_sequences == 2 and result.n_frames == 2 * 4  # first and last frame dropped per case
    assert set(result.metrics) == {"maxDice", "meanDice", "Smeasure", "MAE", "maxIoU", "neg_clean"}
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    assert model.training  # restored


def test_option_errors(tmp_path, video_dir):
    with pytest.raises(UsageError, match="unknown model"):
        train(_cfg(tmp_path, [video_dir], model="unet"))
    with pytest.raises(UsageError, match="multiples of 32"):
        train(_cfg(tmp_path, [video_dir], input_size=(60, 64)))
    with pytest.raises(UsageError, match="larger than"):
        train(_cfg(tmp_path, [video_dir], batch=99))
    with pytest.raises(UsageError, match="best-metric"):
        train(_cfg(tmp_path, [video_dir], best_metric="accuracy"))
    with pytest.raises(UsageError, match="--compile-mode must be one of"):
        train(_cfg(tmp_path, [video_dir], compile_mode="fastest"))
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "option, message",
    [
        ({"batch": 0}, "--batch must be at least 1, got 0"),
        ({"val_max_frames": 2}, "--val-max-frames must be at least 3, got 2"),
        ({"lr": 0.0}, "--lr must be positive, got 0.0"),
        ({"backbone_lr_mult": 1.5}, r"--backbone-lr-mult must be in \(0, 1\], got 1.5"),
        ({"time_limit_s": -6.0}, "--time-limit must be positive, got -0.1"),  # the flag counts minutes
        ({"best_metric": "accuracy"}, "unknown --best-metric 'accuracy'"),
        ({"weight_decay": -1.0}, "--weight-decay and --clip-grad cannot be negative"),
        ({"input_size": (64, 60)}, "--size must be WIDTHxHEIGHT .* got 60x64"),
        ({"data": []}, "no training data"),
    ],
)
def test_option_checks_name_the_flag(option, message):
    cfg = TrainConfig(**{"model": "pns-net", "data": ["somewhere"], "out": "run", **option})
    with pytest.raises(UsageError, match=message):
        cfg.check()


def test_command_options_are_the_config_fields():
    """Every TrainConfig field with a flag is a `vps train` option with the field's help and default
    (the command's own choices: the zoo's first model, `--no-*` switches, `--val` given or not)."""
    from dataclasses import MISSING, fields

    import typer

    from vpscli.cli import app

    command = next(c for c in typer.main.get_command(app).commands.values() if c.name == "train")
    params = {p.name: p for p in command.params}
    flagged = [f for f in fields(TrainConfig) if f.metadata["flag"]]
    assert set(params) == {f.name for f in flagged} | {"quiet"}
    for f in flagged:
        param = params[f.name]
        assert f.metadata["flag"].split("/")[0] in param.opts, f.name
        if f.name != "model":
            assert param.help == f.metadata["help"].replace("[", "\\["), f.name
        if f.metadata["flag"].startswith("--no-"):
            assert param.default is False and f.default is True
        elif f.name not in ("model", "val"):
            assert param.default == (None if f.default is MISSING else f.default), f.name


# ---------------------------------------------------------------- CLI


def vps(*args):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )


def test_cli_errors_are_one_line(tmp_path, video_dir):
    r = vps("train", "--data", tmp_path / "nope", "--out", tmp_path / "run")
    assert r.returncode == 1 and "data folder not found" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = vps("train", "--data", video_dir, "--out", tmp_path / "run", "--model", "unet")
    assert r.returncode == 2 and "unknown model 'unet'" in r.stderr
    r = vps("train", "--data", video_dir, "--out", tmp_path / "run", "--size", "64by64")
    assert r.returncode == 2 and "WIDTHxHEIGHT" in r.stderr
    r = vps("train", "--data", video_dir, "--out", tmp_path / "run", "--batch", "0")
    assert r.returncode == 2 and "--batch must be at least 1" in r.stderr
    r = vps("train", "--data", video_dir, "--out", tmp_path / "run", "--resume")
    assert r.returncode == 1 and "no training snapshot" in r.stderr


def test_cli_short_run(tmp_path, video_dir):
    r = vps(
        "train",
        "-m",
        "pns-net",
        "--data",
        video_dir,
        "--out",
        tmp_path / "run",
        "--iters",
        "2",
        "--batch",
        "1",
        "--size",
        "64x64",
        "--device",
        "cpu",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert r.returncode == 0, r.stderr
    assert "2 steps" in r.stdout and (tmp_path / "run" / "last.safetensors").is_file()
    assert "data: 24 frames at 88x88" in r.stderr and "decoded in" in r.stderr
    assert sorted(p.suffixes[-2] for p in (tmp_path / "cache").glob("*.npy")) == [".frames", ".masks"]
    r = vps(
        "train",
        "-m",
        "pns-net",
        "--data",
        video_dir,
        "--out",
        tmp_path / "again",
        "--iters",
        "1",
        "--batch",
        "1",
        "--size",
        "64x64",
        "--device",
        "cpu",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert r.returncode == 0 and "from the cache in" in r.stderr, r.stderr


def test_cli_damaged_frame_is_one_line(tmp_path, video_dir):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(video_dir, data)
    bad = sorted((data / "Frame" / "case1").iterdir())[3]
    bad.write_bytes(b"not an image")
    r = vps(
        "train",
        "-m",
        "pns-net",
        "--data",
        data,
        "--out",
        tmp_path / "run",
        "--iters",
        "1",
        "--size",
        "64x64",
        "--device",
        "cpu",
        "--no-cache",
    )
    assert r.returncode == 1 and "cannot read this image" in r.stderr and bad.name in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()  # progress messages ("data: …"), then the error on one line
    assert "cannot read this image" in lines[-1] and "fix:" in lines[-1] and "Traceback" not in r.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_shared_data_is_recognised(vps_data):
    cvc = discover_source(vps_data / "cvc-clinicdb" / "train")
    assert cvc.kind == "video" and len(cvc.sequences) == 18 and cvc.n_frames == 367
    valid = discover_source(vps_data / "cvc-clinicdb" / "valid")
    assert valid.kind == "video" and len(valid.sequences) == 6 and valid.n_frames == 123
    kvasir = discover_source(vps_data / "kvasir-seg")
    assert kvasir.kind == "image" and kvasir.n_frames == 1000
    neg = discover_source(vps_data / "polypgen-negatives")
    assert neg.kind == "negative" and neg.n_frames == 250 and len(neg.sequences) == 7
    assert discover_source(vps_data / "cvc-clinicdb" / "valid" / "Frame").sequences == valid.sequences
    assert discover_source(vps_data / "polypgen-negatives" / "Frame").sequences == neg.sequences


@pytest.mark.parametrize("n", [7, 3])
def test_validation_scores_what_segment_and_evaluate_give(tmp_path, n):
    """Validation runs `vps segment`'s own Segmenter (the same windows: the last clip aligned to the end of
    the case, a case shorter than a clip padded; the same 8-bit maps), so its scores are the ones
    `vps segment --save-prob` + `vps evaluate` give for the case."""
    from tests._models import trained_like
    from vpscli.cli import main
    from vpscli.engine import Segmenter, SegmentOptions, segment_video
    from vpscli.io.sources import FrameFolderSource

    # frames larger than the model's input: the maps are upsampled to the frame size before quantisation
    write_clip(tmp_path / "data", SynthConfig(frames=n, width=176, height=96, seed=31), "frames", "case")
    model = trained_like("pns-net", (64, 112))
    validated = validate(model, [discover_source(tmp_path / "data")], torch.device("cpu")).metrics
    segment_video(  # validation computes in fp32; torch's `auto` would be bf16 on a CPU with AMX
        Segmenter(model, device="cpu", precision="fp32"),
        FrameFolderSource(tmp_path / "data" / "Frame" / "case"),
        SegmentOptions(out_root=tmp_path / "out", save_prob=True, overlay=False),
    )
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "out"),
                str(tmp_path / "data" / "GT"),
                "-q",
                "-m",
                "all",
                "--json",
                str(tmp_path / "scores.json"),
            ]
        )
        == 0
    )
    evaluated = json.loads((tmp_path / "scores.json").read_text())["splits"]["."]["."]["dataset"]
    assert 0.05 < validated["maxDice"] < 0.999  # a real score, neither nothing nor perfect
    for key in ("maxDice", "meanDice", "Smeasure", "MAE", "maxIoU"):
        assert validated[key] == pytest.approx(evaluated[key], abs=1e-9), key


def test_steps_read_nothing_back_between_log_rows(tmp_path, video_dir, monkeypatch):
    """Losses stay on the device and are read once per ``--log-every`` steps: every read-back of a
    tensor value (``item``, ``tolist``, ``float``, ``bool``) is counted while the loop runs."""
    import traceback

    reads = []
    for name in ("item", "tolist", "__float__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *a, _real=real, _name=name, **k):
            # Reads made by vps itself (torch's AdamW reads its step counter, which lives on the host
            # even when the model is on CUDA; kornia checks the σ that augment passes on the host).
            if any("vpscli" in f.filename for f in traceback.extract_stack()[-3:-1]):
                reads.append(_name)
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    result = train(_cfg(tmp_path, [video_dir], iters=6, log_every=3, batch=2, val_every=None))
    assert result.step == 6
    assert reads.count("tolist") == 2 and len(reads) == 2, reads  # two log rows, nothing else
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "train"]
    assert [int(r["step"]) for r in rows] == [3, 6] and all(float(r["loss"]) > 0 for r in rows)


@pytest.mark.numerics
def test_training_placement_and_fused_optimizer_run_on_the_cpu():
    """The CUDA choices of ``vps train`` taken on the CPU: channels-last weights and the fused AdamW
    (one update kernel, step counters on the device) give the step the default AdamW gives."""
    from vpscli.engine.device import Placement, place_model
    from vpscli.train.finetune import make_optimizer
    from vpscli.train.step import train_step

    placement = Placement.for_training(torch.device("cpu"))
    assert placement.channels_last and Placement.for_training(torch.device("cuda")).channels_last
    window = window_for(get_spec("pns-net"))
    batch = {
        "frames": torch.rand(2, 5, 3, *SIZE, generator=torch.Generator().manual_seed(0)),
        "masks": torch.zeros(2, 5, 1, *SIZE),
        "anchor": torch.zeros(2, 3, *SIZE),
    }
    batch["masks"][..., 20:40, 20:40] = 1
    results = []
    for fused in (False, True):
        torch.manual_seed(0)
        model, _ = place_model(build_model("pns-net", input_size=SIZE), placement, training=True)
        initial = [p.detach().clone() for p in model.parameters()]
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        optimizer = make_optimizer(model, 1e-3, 0.1, fused=fused)
        assert optimizer.defaults["fused"] == (fused or None)
        for _ in range(2):
            values = train_step(model, optimizer, batch, window, 1.0)
        results.append((values, [p.detach().clone() for p in model.parameters()]))
    # step 2's loss terms agree to float rounding (measured ≤ 1.2e-7 relative at 1–4 threads); its
    # gradient norm reads every weight, including the few that the two updates moved apart (below), so it
    # agrees to 2.3e-5 at 1 thread and 4.2e-4 at 2–4 (MKL's split of the reductions). The bound 1e-3
    # still fails an update with a learning rate 10 % off (norm 4–8 % away) or without weight decay (1.3e-3).
    torch.testing.assert_close(results[1][0][:3], results[0][0][:3], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][0][3], results[0][0][3], rtol=1e-3, atol=0)
    # Adam moves each weight by about lr (1e-3) per step whatever its gradient's scale, so weights
    # with near-zero gradients amplify rounding: the updates agree to a tenth of a step on ≥ 99.5 %
    # of the weights, and never by more than the two steps.
    moved = close = total = 0
    for p0, a, b in zip(initial, results[0][1], results[1][1]):
        diff = (a - b).abs()
        assert float(diff.max()) < 2.2e-3
        close += int((diff <= 1e-4).sum())
        moved += int(((a - p0).abs() > 5e-4).sum())
        total += a.numel()
    assert close >= 0.995 * total and moved > 0.5 * total, (close, moved, total)


def test_cli_unwritable_out_is_one_line_before_loading(tmp_path, video_dir):
    (tmp_path / "afile").write_text("x")
    r = vps(
        "train",
        "-m",
        "pns-net",
        "--data",
        video_dir,
        "--out",
        tmp_path / "afile" / "run",
        "--iters",
        "1",
        "--size",
        "64x64",
        "--device",
        "cpu",
        "--no-cache",
    )
    assert r.returncode == 1 and "is a file, not a folder" in r.stderr and "fix:" in r.stderr, r.stderr
    assert "data:" not in r.stderr and "internal error" not in r.stderr  # refused before any data was read


def test_cli_sigterm_says_what_it_kept(tmp_path, video_dir):
    import signal
    import time

    out = tmp_path / "run"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vpscli",
            "train",
            "-m",
            "pns-net",
            "--data",
            str(video_dir),
            "--out",
            str(out),
            "--iters",
            "100000",
            "--batch",
            "1",
            "--size",
            "64x64",
            "--device",
            "cpu",
            "--save-every",
            "2",
            "--log-every",
            "1",
            "--no-cache",
            "--no-augment",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (
        (out / "checkpoint.pt").is_file()
        and (out / "log.csv").is_file()
        and len((out / "log.csv").read_text().splitlines()) > 4
    ):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    err = " ".join(err.split())
    assert p.returncode == 143, err  # EXIT_TERMINATED
    assert (
        "interrupted — stopped at step" in err and "checkpoint.pt holds step" in err and "--resume" in err
    ), err


def test_a_mask_of_another_size_than_its_frame_is_refused(tmp_path, video_dir):
    import shutil

    import numpy as np

    from vpscli.errors import InputError
    from vpscli.io.masks import write_mask
    from vpscli.train.store import build_store

    data = tmp_path / "data"
    shutil.copytree(video_dir, data)
    mask = sorted((data / "GT" / "case0").iterdir())[2]
    write_mask(mask, np.zeros((50, 60), np.uint8))
    with pytest.raises(InputError, match=r"this mask is 60x50 but its frame .* is 128x96") as e:
        build_store([discover_source(data)], (64, 64), cache_dir=None)
    assert str(mask) in e.value.one_line()
