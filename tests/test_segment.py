"""`vps segment` outputs: masks, probs, overlay, frames.csv, run.json, resume, batch errors."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from tests._models import trained_like
from vpscli.engine import Segmenter, SegmentOptions, segment_video
from vpscli.errors import OutputError
from vpscli.io.masks import read_mask
from vpscli.io.sources import open_source
from vpscli.models import save_checkpoint
from vpscli.synth import SynthConfig, write_clip


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_masks_and_rows_are_the_same_without_the_probability_maps(clip, weights, tmp_path):
    """Without ``--save-prob`` the run computes no probability map (only the regions around the masks and
    peaks): the masks and frames.csv are the same bytes as a run that writes them."""
    seg = Segmenter("pns-plus", weights["pns-plus"], device="cpu", threshold=0.5)
    seen = []
    for save_prob in (True, False):
        opts = SegmentOptions(out_root=tmp_path / str(save_prob), save_prob=save_prob, overlay=not save_prob)
        segment_video(
            seg, open_source(clip / "vid.mp4"), opts, on_frame=lambda r: seen.append(r.prob is None)
        )
    assert seen == [False] * 11 + [True] * 11
    a, b = tmp_path / "True" / "vid", tmp_path / "False" / "vid"
    assert (a / "frames.csv").read_bytes() == (b / "frames.csv").read_bytes()
    rows = read_csv(b / "frames.csv")
    assert sum(int(r["present"]) for r in rows) > 0 and len({r["max_prob"] for r in rows}) > 5
    for name in sorted(p.name for p in (a / "masks").iterdir()):
        assert (a / "masks" / name).read_bytes() == (b / "masks" / name).read_bytes(), name
    assert not (b / "probs").exists() and (b / "overlay.mp4").exists()


@pytest.mark.parametrize("model", ["pns-plus", "aen-cffm"])
def test_outputs_agree_with_each_other(clip, weights, tmp_path, model):
    seg = Segmenter(model, weights[model], device="cpu", threshold=0.5)
    rep = segment_video(seg, open_source(clip / "vid.mp4"), SegmentOptions(out_root=tmp_path, save_prob=True))
    out = tmp_path / "vid"
    masks = sorted((out / "masks").glob("*.png"))
    assert rep.status == "complete" and rep.frames == 11
    assert [p.stem for p in masks] == [f"{i:06d}" for i in range(11)]
    rows = read_csv(out / "frames.csv")
    assert [int(r["index"]) for r in rows] == list(range(11))
    levels = np.concatenate([read_mask(out / "probs" / p.name).array.ravel() for p in masks])
    assert ((levels > 12) & (levels < 243)).mean() > 0.5, "probabilities with real gradients, not 0/1"
    for row, path in zip(rows, masks):
        m = read_mask(path).array
        p = read_mask(out / "probs" / path.name).array
        assert m.shape == (64, 96) and set(np.unique(m)) <= {0, 255}
        # mask = p ≥ 0.5; the PNG holds floor(255p), so level 127 holds p in [0.498, 0.502)
        np.testing.assert_array_equal((m > 0)[p != 127], (p >= 128)[p != 127])
        assert float(row["area_fraction"]) == pytest.approx((m > 0).mean(), abs=1e-6)
        assert int(row["present"]) == int((m > 0).any())
        assert float(row["max_prob"]) == pytest.approx(p.max() / 255, abs=1 / 255 + 1e-6)
        if (m > 0).any():
            ys, xs = np.nonzero(m)
            assert (int(row["bbox_x"]), int(row["bbox_y"])) == (xs.min(), ys.min())
            assert (int(row["bbox_w"]), int(row["bbox_h"])) == (
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1,
            )
    overlay = open_source(out / "overlay.mp4")
    assert overlay.probe().frame_count == 11 and (overlay.probe().width, overlay.probe().height) == (96, 64)
    assert sum(1 for _ in overlay) == 11
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["model"] == model and run["frames"] == 11
    assert run["weights_sha256"] and run["device"] == "cpu" and run["threshold"] == 0.5
    assert run["probe"]["frame_count"] == 11 and {"decode", "model", "upsample", "png", "overlay"} <= set(
        run["timings_seconds"]
    )


def test_frame_folder_odd_size_names_and_no_overlay(clip, weights, tmp_path):
    seg = Segmenter("cffm", weights["cffm"], device="cpu")
    segment_video(seg, open_source(clip / "Frame" / "odd"), SegmentOptions(out_root=tmp_path, overlay=False))
    masks = sorted((tmp_path / "odd" / "masks").glob("*.png"))
    assert [p.name for p in masks] == [f"{i:06d}.png" for i in range(6)]  # frame names of the folder
    assert all(read_mask(p).array.shape == (75, 101) for p in masks)
    assert not (tmp_path / "odd" / "overlay.mp4").exists()


@pytest.mark.numerics
def test_state_resets_between_videos(clip, weights, tmp_path):
    """The same video twice in one run gives identical masks: nothing leaks from video 1 into 2."""
    import shutil

    shutil.copy(clip / "vid.mp4", tmp_path / "copy.mp4")
    seg = Segmenter("aen-cffm", weights["aen-cffm"], device="cpu")
    opts = SegmentOptions(out_root=tmp_path / "out", save_prob=True, overlay=False)
    segment_video(seg, open_source(clip / "vid.mp4"), opts)
    segment_video(seg, open_source(tmp_path / "copy.mp4"), opts)
    for a in sorted((tmp_path / "out" / "vid" / "probs").glob("*.png")):
        np.testing.assert_array_equal(
            read_mask(a).array, read_mask(tmp_path / "out" / "copy" / "probs" / a.name).array
        )


@pytest.mark.numerics
def test_resume_after_interrupt_gives_identical_outputs(clip, weights, tmp_path):
    seg = Segmenter("aen-cffm", weights["aen-cffm"], device="cpu")
    clean = SegmentOptions(out_root=tmp_path / "clean", save_prob=True)
    segment_video(seg, open_source(clip / "vid.mp4"), clean)

    def stop_after_six(result):
        if result.index == 5:
            raise KeyboardInterrupt

    opts = SegmentOptions(out_root=tmp_path / "cut", save_prob=True)
    with pytest.raises(KeyboardInterrupt):
        segment_video(seg, open_source(clip / "vid.mp4"), opts, on_frame=stop_after_six)
    cut = tmp_path / "cut" / "vid"
    assert json.loads((cut / "run.json").read_text())["status"] == "interrupted"
    assert not (cut / "overlay.mp4").exists()
    assert not list(cut.rglob(".*partial*")), "no half-written file"
    n_kept = len(list((cut / "masks").glob("*.png")))
    assert 1 <= n_kept <= 6
    # frames.csv keeps the rows of exactly the frames whose masks were written
    assert read_csv(cut / "frames.csv") == read_csv(tmp_path / "clean" / "vid" / "frames.csv")[:n_kept]
    with pytest.raises(OutputError, match="unfinished run"):
        segment_video(seg, open_source(clip / "vid.mp4"), opts)
    opts = replace(opts, resume=True)
    rep = segment_video(seg, open_source(clip / "vid.mp4"), opts)
    assert rep.status == "complete" and rep.reused_masks == n_kept
    for sub in ("masks", "probs"):
        for a in sorted((tmp_path / "clean" / "vid" / sub).glob("*.png")):
            np.testing.assert_array_equal(read_mask(a).array, read_mask(cut / sub / a.name).array)
    assert read_csv(cut / "frames.csv") == read_csv(tmp_path / "clean" / "vid" / "frames.csv")
    assert open_source(cut / "overlay.mp4").probe().frame_count == 11
    assert segment_video(seg, open_source(clip / "vid.mp4"), opts).status == "skipped"


# pns-net in batches of two 5-frame clips: frames 10-19 form one batch, so 10 + the 4-frame tail are computed
@pytest.mark.numerics
@pytest.mark.parametrize(
    "model, batch, computed",
    [("pns-net", 2, 14), ("pns-plus", 1, 24 - 15), ("cffm", 1, 24 - 16 + 9), ("aen-pns-plus", 1, 24)],
)
def test_resume_runs_the_model_only_where_outputs_are_missing(weights, tmp_path, model, batch, computed):
    """A run stopped after 16 of 24 frames: the resumed run predicts the rest — plus the frames the model
    needs to rebuild its state (CFFM: 9 for its feature cache; AEN: all, its memory feeds on itself) —
    and its outputs are bit-identical to an uninterrupted run's."""
    write_clip(tmp_path, SynthConfig(frames=24, width=96, height=64, seed=4), "mp4", "v24")
    seg = Segmenter(model, weights[model], device="cpu", batch=batch)
    clean = tmp_path / "clean" / "v24"
    rep = segment_video(
        seg,
        open_source(tmp_path / "v24.mp4"),
        SegmentOptions(out_root=tmp_path / "clean", save_prob=True, overlay=False),
    )
    assert json.loads((clean / "run.json").read_text())["frames_computed"] == 24 == rep.frames
    cut = tmp_path / "cut" / "v24"
    shutil.copytree(clean, cut)
    rows = read_csv(clean / "frames.csv")
    for name in [r["name"] for r in rows[16:]]:
        (cut / "masks" / f"{name}.png").unlink()
        (cut / "probs" / f"{name}.png").unlink()
    with open(cut / "frames.csv", "w", newline="") as fh:  # 16 rows and a 17th cut short by a kill
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:16])
        fh.write("16,000016,0.64")
    record = json.loads((cut / "run.json").read_text())
    (cut / "run.json").write_text(json.dumps({**record, "status": "running"}))

    def stop_at_three(result):
        if result.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # stopped again while passing over the finished frames
        segment_video(
            seg,
            open_source(tmp_path / "v24.mp4"),
            SegmentOptions(out_root=tmp_path / "cut", save_prob=True, overlay=False, resume=True),
            on_frame=stop_at_three,
        )
    assert read_csv(cut / "frames.csv") == rows[:16], "the earlier run's rows are kept"
    rep = segment_video(
        seg,
        open_source(tmp_path / "v24.mp4"),
        SegmentOptions(out_root=tmp_path / "cut", save_prob=True, overlay=False, resume=True),
    )
    record = json.loads((cut / "run.json").read_text())
    assert rep.reused_masks == 16 and record["status"] == "complete"
    assert record["frames_computed"] == computed
    assert read_csv(cut / "frames.csv") == rows
    for sub in ("masks", "probs"):
        for a in sorted((clean / sub).glob("*.png")):
            np.testing.assert_array_equal(
                read_mask(a).array, read_mask(cut / sub / a.name).array, err_msg=a.name
            )


def vps(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
    )


def test_cli_batch_with_a_bad_input_finishes_the_others(clip, weights, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(os.urandom(2000))
    # two at a time: the failure is reported while the other video runs
    r = vps(
        "segment",
        clip / "vid.mp4",
        tmp_path / "bad.mp4",
        tmp_path / "missing.mp4",
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "-o",
        tmp_path / "out",
        "--device",
        "cpu",
        "-q",
        "--jobs",
        "2",
        cwd=tmp_path,
    )
    assert r.returncode == 3, r.stderr
    assert "bad.mp4: not a readable video" in r.stderr and "missing.mp4: not found" in r.stderr
    assert "2 of 3 inputs failed" in r.stderr
    assert len(list((tmp_path / "out" / "vid" / "masks").glob("*.png"))) == 11
    r = vps(
        "segment",
        clip / "vid.mp4",
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "-o",
        tmp_path / "out",
        "--device",
        "cpu",
        "-q",
        cwd=tmp_path,
    )
    assert r.returncode == 1 and "already segmented" in r.stderr and "--resume" in r.stderr
    r = vps("segment", clip / "vid.mp4", "-m", "cffm", "-w", weights["pns-plus"], cwd=tmp_path)
    assert r.returncode == 1 and "weights are for model 'pns-plus'" in r.stderr
    r = vps("segment", clip / "vid.mp4", "-m", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr
    (tmp_path / "afile").write_text("x")
    r = vps(
        "segment",
        clip / "vid.mp4",
        "-m",
        "pns-plus",
        "-w",
        weights["pns-plus"],
        "-o",
        tmp_path / "afile",
        "--device",
        "cpu",
        "-q",
        cwd=tmp_path,
    )
    assert r.returncode == 1 and "afile: is a file, not a folder" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_refuses_to_run_without_weights(clip, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "vpscli", "segment", str(clip / "vid.mp4"), "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "VPS_WEIGHTS": str(tmp_path)},
        timeout=120,
    )
    assert r.returncode == 1
    assert "no trained weights for model 'aen-cffm' are bundled" in r.stderr and "--weights FILE" in r.stderr
    assert not (tmp_path / "vps-out").exists()


@pytest.mark.numerics
def test_imported_half_weights_are_bundled_at_their_trained_size(clip, weights, tmp_path, monkeypatch):
    """`vps weights import --half` of a vps train checkpoint: float16 file, the trained input size and the
    training record in the manifest; segment then uses it by default, at that size, and agrees with the
    float32 checkpoint; a model without bundled weights names the ones that have them."""
    import torch
    from safetensors import safe_open

    monkeypatch.setenv("VPS_WEIGHTS", str(tmp_path / "w"))
    net = trained_like("pns-plus", (64, 112))
    trained = save_checkpoint(
        net,
        tmp_path / "best.safetensors",
        {
            "steps": "7",
            "data": json.dumps(["/d/kvasir-seg", "/d/cvc-clinicdb/train"]),
            "val_data": json.dumps(["/d/cvc-clinicdb/valid"]),
            "val_metrics": json.dumps({"maxDice": 0.61234}),
            "recipe": "AdamW lr 0.0004",
        },
    )
    r = vps(
        "weights",
        "import",
        trained,
        "--half",
        "--name",
        "pns-plus-test",
        "--note",
        "demo grade",
        cwd=tmp_path,
        env={"VPS_WEIGHTS": str(tmp_path / "w")},
    )
    assert r.returncode == 0, r.stderr
    assert "pns-plus-test.safetensors for pns-plus at 112×64 (W×H), float16" in r.stderr
    entry = json.loads((tmp_path / "w" / "manifest.json").read_text())["weights"][0]
    assert entry["input_size"] == [64, 112] and entry["dtype"] == "float16" and entry["note"] == "demo grade"
    assert entry["training_data"] == "kvasir-seg, cvc-clinicdb/train"
    assert entry["metrics"] == {"validation_data": "cvc-clinicdb/valid", "maxDice": 0.6123}
    assert entry["recipe"].startswith("7 steps done")
    with safe_open(str(tmp_path / "w" / "pns-plus-test.safetensors"), "pt") as f:
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}
    param_names = {k for k, _ in net.named_parameters()}
    assert {dtypes[k] for k in param_names} == {torch.float16}
    assert {dtypes[k] for k in dtypes.keys() - param_names} <= {torch.float32, torch.int64}
    assert (tmp_path / "w" / "pns-plus-test.safetensors").stat().st_size < 0.55 * trained.stat().st_size

    bundled = Segmenter("pns-plus", device="cpu", threshold=0.5)
    assert bundled.input_size == (64, 112) and bundled.weights_entry.file == "pns-plus-test.safetensors"
    with (
        torch.no_grad()
    ):  # the float32 model with its parameters rounded through float16 is the bundled model
        for p in net.parameters():
            p.copy_(p.half().float())
    rounded = save_checkpoint(net, tmp_path / "rounded.safetensors")
    a = [r.prob for r in bundled.run(open_source(clip / "vid.mp4"))]
    b = [r.prob for r in Segmenter("pns-plus", rounded, device="cpu").run(open_source(clip / "vid.mp4"))]
    assert len(a) == len(b) == 11 and all(np.array_equal(x, y) for x, y in zip(a, b))

    # no --model: the best model with bundled weights (here the only one)
    r = vps(
        "segment",
        clip / "vid.mp4",
        "--no-overlay",
        "--device",
        "cpu",
        cwd=tmp_path,
        env={"VPS_WEIGHTS": str(tmp_path / "w")},
    )
    assert (
        r.returncode == 0 and "running: pns-plus on res2net50, weights pns-plus-test.safetensors" in r.stderr
    )
    run = json.loads((tmp_path / "vps-out" / "vid" / "run.json").read_text())
    assert run["weights_sha256"] == entry["sha256"] and run["model"] == "pns-plus"
    # --weights alone: the model the file records
    r = vps(
        "segment",
        clip / "vid.mp4",
        "-w",
        trained,
        "--no-overlay",
        "--device",
        "cpu",
        "-q",
        "-o",
        "byfile",
        cwd=tmp_path,
        env={"VPS_WEIGHTS": str(tmp_path / "w")},
    )
    assert (
        r.returncode == 0
        and json.loads((tmp_path / "byfile" / "vid" / "run.json").read_text())["model"] == "pns-plus"
    )
    r = vps(
        "segment",
        clip / "vid.mp4",
        "-m",
        "cffm",
        "-q",
        cwd=tmp_path,
        env={"VPS_WEIGHTS": str(tmp_path / "w")},
    )
    assert r.returncode == 1 and "no trained weights for model 'cffm'" in r.stderr
    assert "--model pns-plus" in r.stderr


def _bundled_models():
    from vpscli.weights import bundled_entries

    return sorted({e.model for e in bundled_entries()}) or ["none bundled"]


#: Quality bounds of the bundled weights on synthetic clips none of them was trained on (seeds ≥ 9000;
#: training renders seeds 0–999): mean Dice over the frames that show a polyp, and the largest share
#: of a polyp-free frame marked as polyp. Measured values are in weights/README.md.
SYNTH_DICE_BOUND = 0.75
SYNTH_NEGATIVE_AREA_BOUND = 0.01


@pytest.mark.parametrize("model", _bundled_models())
def test_bundled_weights_segment_a_synthetic_clip_well(tmp_path, model):
    if model == "none bundled":
        pytest.skip("no trained weights are bundled (see weights/README.md)")
    write_clip(tmp_path, SynthConfig(frames=20, width=320, height=224, seed=9001), "mp4", "pos")
    write_clip(tmp_path, SynthConfig(frames=20, width=320, height=224, seed=9002, polyps=2), "mp4", "two")
    write_clip(
        tmp_path, SynthConfig(frames=20, width=320, height=224, seed=9003, negative=True), "mp4", "neg"
    )
    seg = Segmenter(model, device="cpu")
    dice = []
    for name in ("pos", "two"):
        for r in seg.run(open_source(tmp_path / f"{name}.mp4")):
            g = read_mask(tmp_path / "GT" / name / f"{r.index:06d}.png").array > 0
            if g.any():
                dice.append(2 * (r.mask & g).sum() / (r.mask.sum() + g.sum()))
    assert len(dice) >= 30
    assert np.mean(dice) > SYNTH_DICE_BOUND, f"{model}: mean Dice {np.mean(dice):.3f}"
    worst = max(r.mask.mean() for r in seg.run(open_source(tmp_path / "neg.mp4")))
    assert worst < SYNTH_NEGATIVE_AREA_BOUND, f"{model}: {worst:.4f} of a polyp-free frame marked"


@pytest.mark.numerics
def test_ctrl_c_stops_cleanly_and_resume_completes(clip, weights, tmp_path):
    """A real SIGINT to `vps segment`: exit 130, a resume hint, only whole files; --resume finishes identically."""
    import signal
    import time

    from vpscli.synth import SynthConfig, write_clip

    write_clip(tmp_path, SynthConfig(frames=40, width=96, height=64, seed=5), "mp4", "long")
    args = [
        sys.executable,
        "-m",
        "vpscli",
        "segment",
        str(tmp_path / "long.mp4"),
        "-m",
        "pns-plus",
        "-w",
        str(weights["pns-plus"]),
        "--device",
        "cpu",
        "--save-prob",
    ]
    proc = subprocess.Popen(
        args + ["-o", str(tmp_path / "cut")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    masks = tmp_path / "cut" / "long" / "masks"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(masks.glob("*.png"))) < 8 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert not list((tmp_path / "cut").rglob(".*partial*"))
    kept = len(list(masks.glob("*.png")))
    assert 0 < kept < 40
    r = subprocess.run(
        args + ["-o", str(tmp_path / "cut"), "--resume", "-q"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        args + ["-o", str(tmp_path / "clean"), "-q", "--no-overlay"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for sub in ("masks", "probs"):
        names = sorted(p.name for p in (tmp_path / "clean" / "long" / sub).glob("*.png"))
        assert len(names) == 40
        for name in names:
            np.testing.assert_array_equal(
                read_mask(tmp_path / "clean" / "long" / sub / name).array,
                read_mask(tmp_path / "cut" / "long" / sub / name).array,
            )
    run = json.loads((tmp_path / "cut" / "long" / "run.json").read_text())
    assert run["status"] == "complete" and run["resumed_with_existing_masks"] == kept
    assert open_source(tmp_path / "cut" / "long" / "overlay.mp4").probe().frame_count == 40


def test_segment_overlay_of_a_vfr_video_keeps_the_source_timestamps(weights, tmp_path):
    """35 frames, 10 at 10 fps then 25 at 25 fps: overlay frame i plays at source frame i's time."""
    import av

    from tests._media import ffmpeg, make_testsrc

    make_testsrc(tmp_path / "a.mp4", 1, 10, extra=["-video_track_timescale", "1000"])
    make_testsrc(tmp_path / "b.mp4", 1, 25, extra=["-video_track_timescale", "1000"])
    (tmp_path / "list.txt").write_text("file a.mp4\nfile b.mp4\n")
    ffmpeg("-f", "concat", "-i", str(tmp_path / "list.txt"), "-c", "copy", str(tmp_path / "vfr.mp4"))
    source = open_source(tmp_path / "vfr.mp4")
    assert source.probe().vfr
    stamps = [f.timestamp for f in source]
    segment_video(
        Segmenter("pns-net", weights["pns-net"], device="cpu"),
        source,
        SegmentOptions(out_root=tmp_path / "out"),
    )
    with av.open(str(tmp_path / "out" / "vfr" / "overlay.mp4")) as c:
        stream = c.streams.video[0]
        pts = sorted(float(f.pts * stream.time_base) for f in c.decode(stream))
    assert len(pts) == 35
    np.testing.assert_allclose(np.array(pts) - pts[0], np.array(stamps) - stamps[0], atol=1e-3)


@pytest.mark.numerics
@pytest.mark.parametrize("model", ["pns-net", "pns-plus"])
def test_batching_changes_numbers_only_to_rounding(clip, weights, model):
    """`--batch 3` changes the backbone's batch size, so probabilities agree to rounding, not bit for bit:
    at most one 8-bit level, and masks differ only where p sits at the threshold's level."""
    one = list(Segmenter(model, weights[model], device="cpu").run(open_source(clip / "vid.mp4")))
    three = list(Segmenter(model, weights[model], device="cpu", batch=3).run(open_source(clip / "vid.mp4")))
    assert len(one) == len(three) == 11
    for a, b in zip(one, three):
        assert np.abs(a.prob.astype(int) - b.prob.astype(int)).max() <= 1
        differ = a.mask != b.mask
        assert np.all(np.abs(a.prob[differ].astype(int) - 127) <= 1)
    levels = np.stack([r.prob for r in one])
    assert ((levels > 12) & (levels < 243)).mean() > 0.5  # real gradients, so the bound means something
