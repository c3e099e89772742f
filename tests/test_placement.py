"""The placement every command shares (`vpscli.engine.device`): every branch CUDA takes, taken on the CPU.

`vps segment` and `vps train` crashed on CUDA for every PNS model: `model.to(memory_format=channels_last)`
raises on the NS blocks' 5-D Conv3d weights, and that line ran only on CUDA, so no test reached it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._models import TINY, trained_like
from vpscli.engine import Segmenter
from vpscli.engine.device import Placement, place_model, resolve_device, resolve_placement, to_channels_last
from vpscli.errors import UsageError
from vpscli.io.sources import open_source
from vpscli.train.calibration import synthetic_frames

ALL = list(TINY)
CPU_AS_CUDA = Placement(torch.device("cpu"), None, channels_last=True)  # what CUDA gets, on the CPU


def test_the_old_conversion_is_what_crashed():
    model = trained_like("pns-plus", TINY["pns-plus"])
    with pytest.raises(RuntimeError, match="rank 4"):
        model.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ALL)
def test_every_model_converts_to_channels_last_and_computes_the_same(name):
    model = trained_like(name, TINY[name])
    x = model.preprocess(synthetic_frames(TINY[name], 6, seed=8))
    t = min(model.spec.clip_length, model.spec.max_clip_length or 5)
    clip = x[1 : 1 + t][None]
    anchor = x[:1] if model.spec.needs_anchor else None
    with torch.inference_mode():
        before, _ = model(clip, anchor=anchor)
    model, forward = place_model(model, CPU_AS_CUDA)
    params = dict(model.named_parameters())
    four_d = [p for p in params.values() if p.dim() == 4]
    assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) for p in four_d)
    assert all(p.is_contiguous() for p in params.values() if p.dim() != 4)  # 5-D Conv3d untouched
    assert forward is model and not model.training
    with torch.inference_mode():
        after, _ = forward(clip, anchor=anchor)
    scale = float(before.std())
    assert scale > 0.05
    torch.testing.assert_close(after, before, rtol=0, atol=1e-3 * scale)  # other kernels, same numbers


def test_segment_runs_the_cuda_branches_on_the_cpu(tmp_path, monkeypatch):
    """channels-last, and bf16 autocast with it, through the whole engine as on CUDA (bundled weights: a
    trained model's numbers, so the bounds say how close the maps are)."""
    from vpscli.synth import SynthConfig, write_clip

    write_clip(tmp_path, SynthConfig(frames=11, width=224, height=160, seed=2), "mp4", "vid")

    def probs(seg):
        return np.stack([r.prob for r in seg.run(open_source(tmp_path / "vid.mp4"))]).astype(int)

    reference = probs(Segmenter("pns-plus", device="cpu", precision="fp32"))  # `auto`: bf16 with AMX
    assert ((reference > 12) & (reference < 243)).any() and (reference >= 128).any()
    monkeypatch.setattr("vpscli.engine.device.resolve_placement", lambda device, precision: CPU_AS_CUDA)
    seg = Segmenter("pns-plus")
    convs = [
        m.weight for m in seg.model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1
    ]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert np.abs(probs(seg) - reference).max() <= 1
    bf16 = Placement(torch.device("cpu"), torch.bfloat16, channels_last=True)
    monkeypatch.setattr("vpscli.engine.device.resolve_placement", lambda device, precision: bf16)
    seg = Segmenter("pns-plus")
    assert seg.placement.precision == "bf16"
    half = probs(seg)
    # bf16 keeps 8 bits of mantissa: measured 0.18 levels on average, 0.01 % of mask pixels flipped
    assert np.abs(half - reference).mean() < 1 and ((half >= 128) != (reference >= 128)).mean() < 1e-3


def test_compile_path_traces_the_model():
    """`--compile` wraps the placed model in torch.compile; the "eager" backend runs TorchDynamo's capture of
    the real model (graph breaks, guards on the video state) without inductor's minutes of C++ builds."""
    model = trained_like("pns-net", TINY["pns-net"])
    x = model.preprocess(synthetic_frames(TINY["pns-net"], 5, seed=9))[None]
    with torch.inference_mode():
        ref, _ = model(x)
        placed, forward = place_model(model, CPU_AS_CUDA, compile="eager")
        assert forward is not placed
        out, state = forward(x, placed.init_state())
        again, _ = forward(x, placed.init_state())
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-3 * float(ref.std()))
    assert torch.equal(out, again) and state.frames_seen == 5


@pytest.mark.slow
def test_compile_with_inductor():
    """The default backend (inductor), as `vps segment --compile` uses it; about 2 minutes on 2 CPU cores."""
    model = trained_like("pns-net", TINY["pns-net"])
    x = model.preprocess(synthetic_frames(TINY["pns-net"], 5, seed=9))[None]
    with torch.inference_mode():
        ref, _ = model(x)
        _, forward = place_model(model, CPU_AS_CUDA, compile=True)
        out, _ = forward(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-3 * float(ref.std()))


def test_training_runs_the_cuda_branches_on_the_cpu(tmp_path, monkeypatch):
    """`vps train` places its model through the same function, channels-last (the CUDA layout, and the
    CPU's for training): the weights train (gradients and AdamW steps keep their layout) and the run finishes."""
    from vpscli.synth import SynthConfig, write_clip
    from vpscli.train import TrainConfig, train

    write_clip(tmp_path / "data", SynthConfig(frames=12, width=112, height=64, seed=3), "frames", "c1")
    placed = {}
    real = place_model

    def spy(model, placement, **kw):
        placed["placement"] = placement
        placed["model"], forward = real(model, placement, **kw)
        return placed["model"], forward

    monkeypatch.setattr("vpscli.train.start.place_model", spy)
    result = train(
        TrainConfig(
            data=[str(tmp_path / "data")],
            out=str(tmp_path / "run"),
            model="pns-net",
            input_size=(64, 128),
            iters=2,
            batch=1,
            device="cpu",
            augment=False,
        )
    )
    # Training is channels-last on the CPU too (Placement.for_training: oneDNN's backward is faster in NHWC)
    assert (
        placed["placement"] == Placement.for_training(torch.device("cpu"))
        and placed["placement"].channels_last
    )
    assert placed["model"].training
    four_d = [p for p in placed["model"].parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in four_d)
    assert result.step == 2 and result.finished
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows and all("nan" not in r for r in rows)


def test_one_device_resolver():
    assert resolve_device("cpu") == (torch.device("cpu"), None)
    device, note = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (note is None) == torch.cuda.is_available()
    with pytest.raises(UsageError, match="--device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            resolve_device("cuda:0")
    assert not resolve_placement("cpu", "fp32").channels_last
    assert (
        Placement.on(torch.device("cuda")).channels_last
        and not Placement.on(torch.device("cpu")).channels_last
    )


def test_to_channels_last_leaves_values_alone():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv3d(4, 4, 1))
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    to_channels_last(conv)
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last) and conv[1].weight.is_contiguous()
    assert all(torch.equal(before[k], v) for k, v in conv.state_dict().items())


def test_compile_modes_reach_torch_compile(monkeypatch):
    """`--compile-mode reduce-overhead` (CUDA graphs on a GPU) is handed to torch.compile as its mode; the
    backend stays inductor's unless named; a mode nobody knows is a usage error before anything loads."""
    from vpscli.errors import UsageError

    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: calls.append(kw) or model)
    model = trained_like("pns-net", TINY["pns-net"])
    place_model(model, CPU_AS_CUDA, mode="reduce-overhead")
    place_model(model, CPU_AS_CUDA, compile=True, mode="default")
    place_model(model, CPU_AS_CUDA, compile="aot_eager", mode="max-autotune")
    assert calls == [{"mode": "reduce-overhead"}, {}, {"backend": "aot_eager", "mode": "max-autotune"}]
    assert place_model(model, CPU_AS_CUDA)[1] is model and len(calls) == 3
    with pytest.raises(UsageError, match="--compile-mode must be one of"):
        place_model(model, CPU_AS_CUDA, mode="fastest")


def test_segment_refuses_an_unknown_compile_mode(clip, tmp_path):
    from typer.testing import CliRunner

    from vpscli.cli import app

    r = CliRunner().invoke(
        app, ["segment", str(clip / "vid.mp4"), "-o", str(tmp_path / "o"), "--compile-mode", "x"]
    )
    assert r.exit_code == 2 and "--compile-mode must be one of" in r.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("amx", [True, False])
def test_torchs_auto_precision_on_the_cpu_is_bf16_only_with_amx(monkeypatch, amx):
    """The suite's CPUs differ: both branches of the rule, whichever this CPU takes."""
    monkeypatch.setattr("vpscli.engine.device.cpu_has_amx", lambda: amx)
    assert resolve_placement("cpu", "auto").precision == ("bf16" if amx else "fp32")
    assert resolve_placement("cpu", "fp32").precision == "fp32"
