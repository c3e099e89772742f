"""The inference driver: windowing, ownership, state per video, batching, upsampling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vpscli.engine import Segmenter, clip_windows
from vpscli.io.sources import FrameFolderSource
from vpscli.models.base import ModelSpec, VideoModel


class Probe(VideoModel):
    """A contract model that records every call; logit = 8·(red − 0.5), so p follows the red channel."""

    def __init__(self, clip_length=5, stateful=False, anchor=False):
        super().__init__(
            ModelSpec(
                name="probe",
                title="test model",
                clip_length=clip_length,
                input_size=(24, 32),
                fixed_input_size=True,
                mean=(0.0, 0.0, 0.0),
                std=(1.0, 1.0, 1.0),
                memory_clips=1 if stateful else 0,
                needs_anchor=anchor,
            )
        )
        self.calls = []
        self.scale = torch.nn.Parameter(torch.tensor(8.0))

    def step(self, clip, state, indices, anchor):
        self.calls.append(
            {
                "indices": list(indices),
                "batch": clip.shape[0],
                "state": state,
                "seen_before": state.frames_seen,
                "anchor": None if anchor is None else anchor.clone(),
            }
        )
        return self.scale * (clip[:, :, :1] - 0.5)


def folder_clip(tmp_path, n, size=(40, 30), name="clip"):
    """``n`` frames whose red level encodes the frame index: frame i has red = 10·i mod 250."""
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[..., 2] = (10 * i) % 250  # BGR on disk: red channel
        img[: size[1] // 2, :, 2] = 255 - (10 * i) % 250
        cv2.imwrite(str(folder / f"f{i}.png"), img)
    return FrameFolderSource(folder)


class _I:
    def __init__(self, i):
        self.index = i


@pytest.mark.parametrize("clip_length", [1, 3, 5, 12])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 300])
def test_windows_predict_every_frame_exactly_once(n, clip_length):
    windows = list(clip_windows([_I(i) for i in range(n)], clip_length))
    owned = [w.indices[o] for w in windows for o in w.owned]
    assert owned == list(range(n))
    for w in windows:
        assert len(w.items) == len(w.indices) == clip_length
        assert all(b > a for a, b in zip(w.indices, w.indices[1:]))
    if n >= clip_length and n % clip_length:
        assert windows[-1].indices == list(range(n - clip_length, n)), "tail aligned to the end"
    if n < clip_length:
        assert [i.index for i in windows[0].items] == list(range(n)) + [n - 1] * (clip_length - n), (
            "pad by repeating"
        )


def test_batches_and_the_resume_plan():
    """Windows of 3 in batches of 2; frames 0–10 finished: the batches whose owned frames are all finished are
    skipped, except the last ones a predicted batch needs (6 frames replayed) to rebuild the model's state."""
    from vpscli.engine.windows import batched, plan_batches

    windows = list(clip_windows([_I(i) for i in range(20)], 3))  # 7 windows, the last owns frames 18–19
    batches = list(batched(windows, 2))
    assert [len(b) for b in batches] == [2, 2, 2, 1]
    done = set(range(12))
    plan = list(plan_batches(batches, lambda item: item.index in done, replay=6))
    assert [mode for _, mode in plan] == ["skip", "replay", "predict", "predict"]
    assert [b for b, _ in plan] == batches  # in order, none lost
    assert [m for _, m in plan_batches(batches, None, replay=6)] == ["predict"] * 4
    assert [m for _, m in plan_batches(batches, lambda item: True, replay=None)] == ["predict"] * 4
    assert [m for _, m in plan_batches(batches, lambda item: True, replay=0)] == ["skip"] * 4


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 11, 12])
def test_segmenter_outputs_one_result_per_frame_at_source_size(tmp_path, n):
    model = Probe(clip_length=5)
    seg = Segmenter(model, device="cpu", precision="fp32")
    results = list(seg.run(folder_clip(tmp_path, n, size=(41, 31))))
    assert [r.index for r in results] == list(range(n))
    assert [r.name for r in results] == [f"f{i}" for i in range(n)]
    assert all(
        r.mask.shape == (31, 41) and r.prob.shape == (31, 41) and r.prob.dtype == np.uint8 for r in results
    )
    # the bottom half's red level is 10·i/255: p = sigmoid(8·(red − 0.5)) survives bilinear upsampling
    for r in results:
        red = ((10 * r.index) % 250) / 255
        expected = 1 / (1 + np.exp(-8 * (red - 0.5)))
        assert abs(int(r.prob[-1, 20]) - np.floor(expected * 255)) <= 1
        assert r.mask[-1, 20] == (expected >= 0.5)


def test_each_result_carries_its_mask_rows(tmp_path):
    """The mask PNGs are encoded from the rows of the engine's box (no scan of the mask): those rows are the
    mask's own, from its first to past its last foreground row, (0, 0) when it is empty."""
    from vpscli.engine.frame_decision import mask_rows

    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(12):  # black frames (no mask) between frames with a red band (p ≈ 0.98 there)
        img = np.zeros((30, 40, 3), np.uint8)
        img[4 + i : 9 + i, 5:30, 2] = 255 if i % 3 else 0
        cv2.imwrite(str(folder / f"f{i:02d}.png"), img)
    seg = Segmenter(Probe(clip_length=5), device="cpu", precision="fp32")
    results = list(seg.run(FrameFolderSource(folder)))
    kinds = set()
    for r in results:
        hit = np.flatnonzero(r.mask.any(axis=1))
        assert mask_rows(r) == ((int(hit[0]), int(hit[-1]) + 1) if len(hit) else (0, 0))
        kinds.add(len(hit) > 0)
    assert kinds == {True, False}  # both empty and non-empty masks were checked


def test_state_is_fresh_per_video_and_carried_within_one(tmp_path):
    model = Probe(clip_length=3, stateful=True)
    seg = Segmenter(model, device="cpu", batch=4)
    assert seg.batch == 1 and "carries state" in seg.batch_note
    list(seg.run(folder_clip(tmp_path, 7, name="a")))
    first = list(model.calls)
    list(seg.run(folder_clip(tmp_path, 7, name="b")))
    second = model.calls[len(first) :]
    # the state objects themselves are kept (an id() of a freed state can be reused by the next one)
    assert len({id(c["state"]) for c in first}) == 1 and len({id(c["state"]) for c in second}) == 1
    assert first[0]["state"] is not second[0]["state"]
    assert [c["seen_before"] for c in second] == [0, 3, 6], "state starts empty and advances within the video"
    assert [c["indices"] for c in second] == [[0, 1, 2], [3, 4, 5], [4, 5, 6]]


def test_batching_stateless_clips_keeps_batch_constant_and_anchor_is_frame_zero(tmp_path):
    model = Probe(clip_length=2, anchor=True)
    seg = Segmenter(model, device="cpu", batch=3)
    results = list(seg.run(folder_clip(tmp_path, 9)))
    assert [r.index for r in results] == list(range(9))
    assert [c["batch"] for c in model.calls] == [3, 3]  # 5 windows: 3 + (2 padded to 3)
    anchors = [c["anchor"] for c in model.calls]
    frame0_red = 0.0  # bottom rows of frame 0 have red 0
    for a in anchors:  # one frame shared by the batch: the model encodes it once, alone
        assert a.shape[0] == 1 and torch.all(a[:, 0, -1, :] == frame0_red), (
            "every clip sees frame 0 as anchor"
        )


def test_unknown_model_and_missing_weights_are_clear_errors(tmp_path, monkeypatch):
    from vpscli.errors import InputError, UsageError

    with pytest.raises(UsageError, match="unknown model 'nope'"):
        Segmenter("nope", device="cpu")
    monkeypatch.setenv("VPS_WEIGHTS", str(tmp_path))
    with pytest.raises(InputError, match="no trained weights for model 'pns-net' are bundled"):
        Segmenter("pns-net", device="cpu")
    with pytest.raises(UsageError, match="--precision fp16 needs a CUDA device"):
        Segmenter(Probe(), device="cpu", precision="fp16")
    with pytest.raises(UsageError, match="--threshold"):
        Segmenter(Probe(), device="cpu", threshold=1.5)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            Segmenter(Probe(), device="cuda")


def test_decoder_errors_reach_the_caller(tmp_path):
    from vpscli.errors import InputError

    src = folder_clip(tmp_path, 6)
    (tmp_path / "clip" / "f3.png").write_bytes(b"broken")
    with pytest.raises(InputError, match="f3.png: cannot read this image"):
        list(Segmenter(Probe(), device="cpu").run(src))
