"""Inference backends (``--backend``): every model's step as an exported graph, driven over whole videos,
gives the model's answers — on torch itself (always), on OpenVINO and ONNX Runtime (where installed) —
and the disk cache, the choice of backend and its errors behave as documented."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch

from tests._models import TINY, trained_like
from vpscli.backends import choose_backend, compile_model
from vpscli.backends.driver import CompiledModel
from vpscli.backends.graphs import graph_set
from vpscli.backends.runtimes import installed, run_torch_graph
from vpscli.engine.windows import clip_windows
from vpscli.errors import InputError, UsageError
from vpscli.train.calibration import synthetic_frames

MODELS = ["pns-net", "pns-plus", "cffm", "aen-cffm", "aen-pns-plus"]
LITE = "efficientnet-lite2"
#: one level of the 8-bit probability maps: the promise for every backend at fp32
LEVEL = 1 / 255
#: frames per test video: windows from frame 0 (CFFM's early-frame table), the cache's eviction, the AEN
#: memory filling up, and an end-aligned tail window (22 is no multiple of 3 or 5)
N = 22

needs = {
    name: pytest.mark.skipif(not installed(name), reason=f"{name} is not installed (pip install 'vps[fast]')")
    for name in ("openvino", "onnxruntime")
}


@pytest.fixture(scope="module")
def nets():
    return {m: trained_like(m, TINY[m], backbone=LITE).eval() for m in MODELS}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """One cache of converted graphs for the tests that only read them (each model converted once per
    runtime, by whichever test asks first); tests of the cache's own behaviour keep theirs."""
    return tmp_path_factory.mktemp("converted")


def _seeded(converted, cache, net, backend: str = "openvino"):
    """``cache`` holding a copy of ``net``'s converted entry from ``converted``, without OpenVINO's compiled
    forms: for tests of what happens around an entry, which need their own but not another conversion."""
    entry = compile_model(net, backend, cache_dir=converted, threads=1).cache_entry
    shutil.copytree(entry, cache / "graphs" / entry.name, ignore=shutil.ignore_patterns("openvino-compiled"))
    return cache


def _video(net, n: int = N, seed: int = 0) -> torch.Tensor:
    frames = synthetic_frames(net.spec.input_size, n, seed=seed)  # (n, 3, H, W) uint8, a moving polyp
    return net.preprocess(frames)


def _drive(model, video: torch.Tensor, needs_anchor: bool) -> list[torch.Tensor]:
    """Probabilities ``(1, T, 1, H, W)`` per window of ``video``, as the inference driver steps a model."""
    wins = list(clip_windows(range(len(video)), model.spec.clip_length, index_of=lambda i: i))
    state, out = model.init_state(), []
    with torch.inference_mode():
        for w in wins:
            anchor = video[:1] if needs_anchor else None
            logits, state = model(video[w.indices][None], state, frame_indices=w.indices, anchor=anchor)
            out.append(torch.sigmoid(logits.float()))
    return out


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


@pytest.mark.parametrize("name", MODELS)
def test_graphs_compute_what_the_model_computes_over_a_whole_video(nets, name):
    """The graphs run by torch, their state kept by the driver, equal the model's own stepping: the
    graphs are the model's computation, and the driver's index logic is the model's."""
    net = nets[name]
    video = _video(net)
    want = _drive(net, video, net.spec.needs_anchor)
    graphs = graph_set(net)
    model = CompiledModel(
        net, graphs, run_torch_graph(graphs.step), graphs.anchor and run_torch_graph(graphs.anchor), "torch"
    )
    got = _drive(model, video, net.spec.needs_anchor)
    assert len(got) == len(want) == -(-N // net.spec.clip_length)
    assert _max_diff(got, want) < 1e-5
    # the graph stops at the model's own prediction; the driver upsamples it to the input size
    h, w = net.spec.input_size
    coarse = run_torch_graph(graphs.step)([x.numpy() for x in graphs.step.examples()])[0]
    assert coarse.shape[-2:] == (h // net.spec.output_stride, w // net.spec.output_stride)
    # the probabilities are a trained model's: spread inside (0, 1), not saturated
    p = torch.cat([w.flatten() for w in want])
    assert 0.02 < float(p.std()) and float(p.min()) < 0.5 < float(p.max())


def test_the_state_matters_so_the_comparison_can_fail(nets):
    """Dropping CFFM's cache or the AEN's memory changes the answers by far more than the tolerance."""
    net = nets["aen-cffm"]
    video = _video(net)
    want = _drive(net, video, False)
    graphs = graph_set(net)
    step = run_torch_graph(graphs.step)

    def forgetful(inputs):
        inputs = list(inputs)
        inputs[4] = np.zeros_like(inputs[4])  # memory
        inputs[5] = np.zeros_like(inputs[5])  # valid
        return step(inputs)

    got = _drive(CompiledModel(net, graphs, forgetful, None, "torch"), video, False)
    assert _max_diff(got, want) > 10 * LEVEL


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs[b]) for b in ("openvino", "onnxruntime")])
@pytest.mark.parametrize("name", MODELS)
def test_every_backend_gives_torchs_answers_on_every_model(nets, name, backend, converted):
    net = nets[name]
    video = _video(net)
    want = _drive(net, video, net.spec.needs_anchor)
    model = compile_model(net, backend, cache_dir=converted, threads=1)
    got = _drive(model, video, net.spec.needs_anchor)
    assert _max_diff(got, want) < LEVEL / 10  # far inside one 8-bit level
    assert model.cache_entry.is_dir() and model.backend == backend


@pytest.mark.skipif(
    not installed("openvino") or importlib.util.find_spec("nncf") is None, reason="needs openvino and nncf"
)
def test_int8_from_recorded_step_inputs_is_keyed_by_them(nets, tmp_path, monkeypatch):
    """`compile_model(calibration=[...])` as the Python API documents it: the step inputs recorded through
    `input_hook` calibrate the int8 graph, the entry is named by their hash, and other inputs make another.
    The int8 graph is quantised from the fp32 entry's graph: the model is converted once, not per build."""
    from dataclasses import replace

    from vpscli.backends.runtimes import RUNTIMES

    converted: list[str] = []  # the graphs converted from torch, in order
    ov_runtime = RUNTIMES["openvino"]
    counting = replace(
        ov_runtime, convert=lambda g, folder: converted.append(g.name) or ov_runtime.convert(g, folder)
    )
    monkeypatch.setitem(RUNTIMES, "openvino", counting)
    net = nets["pns-net"]
    fp32 = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    samples: list = []
    fp32.input_hook = samples.append
    want = _drive(fp32, _video(net, 10), False)
    assert len(samples) == 2 and converted == ["step"]
    int8 = compile_model(
        net, "openvino", precision="int8", cache_dir=tmp_path, threads=1, calibration=samples
    )
    assert int8.built and int8.cache_entry != fp32.cache_entry
    assert converted == ["step"]  # read from the fp32 entry
    got = _drive(int8, _video(net, 10), False)
    # quantised on two clips' inputs of a small untrained network: not fp32's answers, but nearer to them
    # than their own spread (the bundled model's int8 masks: test_int8_is_calibrated_on_the_given_frames…)
    g, w = torch.cat([t.flatten() for t in got]), torch.cat([t.flatten() for t in want])
    assert _max_diff(got, want) > 0 and float((g - w).abs().mean()) < float(w.std())
    again = compile_model(
        net, "openvino", precision="int8", cache_dir=tmp_path, threads=1, calibration=samples
    )
    assert not again.built and again.cache_entry == int8.cache_entry
    # other inputs make another entry; with the fp32 entry gone, it is converted again, once, beside it
    shutil.rmtree(fp32.cache_entry)
    other = [[a + 0.5 for a in inputs] for inputs in samples]
    moved = compile_model(net, "openvino", precision="int8", cache_dir=tmp_path, threads=1, calibration=other)
    assert moved.built and moved.cache_entry != int8.cache_entry and converted == ["step", "step"]
    assert fp32.cache_entry.is_dir()


@needs["onnxruntime"]
def test_the_cache_is_reused_rebuilt_when_damaged_and_keyed_by_what_it_depends_on(nets, tmp_path):
    net = nets["pns-plus"]
    video = _video(net, 10)
    said: list[str] = []
    first = compile_model(net, "onnxruntime", cache_dir=tmp_path, threads=1, on_convert=said.append)
    want = _drive(first, video, True)
    # the conversion is announced before it starts (it takes seconds), naming where the entry goes
    assert said == [
        f"converting the model for onnxruntime once, into {first.cache_entry} (later runs load it)"
    ]
    again = compile_model(net, "onnxruntime", cache_dir=tmp_path, threads=1, on_convert=said.append)
    assert not again.built and again.cache_entry == first.cache_entry and len(said) == 1
    # a damaged file: detected by its sha256, the entry converted again, the answers unchanged
    graph = first.cache_entry / "step.onnx"
    graph.write_bytes(graph.read_bytes()[:-100])
    repaired = compile_model(net, "onnxruntime", cache_dir=tmp_path, threads=1)
    assert repaired.built and repaired.cache_entry == first.cache_entry
    assert _max_diff(_drive(repaired, video, True), want) == 0.0
    # a record that does not match what the files are for is never trusted
    record = first.cache_entry / "entry.json"
    data = json.loads(record.read_text())
    data["fields"]["weights_sha256"] = "0" * 64
    record.write_text(json.dumps(data))
    assert compile_model(net, "onnxruntime", cache_dir=tmp_path, threads=1).built
    # other weights are another entry
    other = trained_like("pns-plus", TINY["pns-plus"], seed=1, backbone=LITE).eval()
    assert compile_model(other, "onnxruntime", cache_dir=tmp_path, threads=1).cache_entry != first.cache_entry
    assert not list(tmp_path.glob("graphs/.staging-*"))


@needs["onnxruntime"]
def test_segment_says_it_converts_the_model_before_it_does(tmp_path):
    """``vps segment``'s runner prints the conversion note before the conversion (so a first run's pause of
    seconds is explained while it lasts) and before the running line; a later run loads it silently."""
    from vpscli.batch.events import BatchEvents
    from vpscli.batch.runner import _loaded_segmenter
    from vpscli.engine.options import ModelConfig
    from vpscli.models import save_checkpoint

    ckpt = save_checkpoint(
        trained_like("pns-net", TINY["pns-net"], backbone=LITE), tmp_path / "w.safetensors"
    )
    lines: list[str] = []

    class Events(BatchEvents):
        def notice(self, message):
            built = list((tmp_path / "cache" / "graphs").glob("pns-net-*"))
            lines.append(f"note: {message} [entries: {len(built)}]")

        def running(self, message):
            lines.append(f"running: {message}")

    config = ModelConfig("pns-net", ckpt, device="cpu", backend="onnxruntime", cache_dir=tmp_path / "cache")
    seg = _loaded_segmenter(config, Events())
    assert seg.graphs_built
    assert lines[0] == (
        f"note: converting the model for onnxruntime once, into {seg.graph_cache} (later runs load it) "
        "[entries: 0]"  # said before the entry exists
    )
    assert lines[1].startswith("running: pns-net")  # the running line after it
    lines.clear()
    again = _loaded_segmenter(config, Events())
    assert not again.graphs_built and not [ln for ln in lines if "converting" in ln]


def test_an_unwritable_cache_is_one_line_naming_the_fix(nets, tmp_path):
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError) as e:
        compile_model(nets["pns-net"], "onnxruntime", cache_dir=blocker / "cache")
    assert "--cache-dir" in e.value.fix and "\n" not in str(e.value)


def test_backend_choices_and_their_errors(monkeypatch):
    monkeypatch.delenv("VPS_BACKEND", raising=False)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "openvino" else real(n, *a))
    choice = choose_backend("auto", "cpu")
    assert choice.backend == "torch" and "vps[fast]" in choice.note
    monkeypatch.setattr(importlib.util, "find_spec", real)
    if installed("openvino"):
        choice = choose_backend(None, "cpu")
        assert (choice.backend, choice.precision, choice.automatic) == ("openvino", "fp32", True)
        assert choose_backend("auto", "cpu", compiling=True).backend == "torch"
        assert choose_backend("openvino", "cpu", "bf16").precision == "bf16"
    monkeypatch.setenv("VPS_BACKEND", "onnxruntime")
    assert choose_backend(None, "cpu").backend == "onnxruntime"
    monkeypatch.setenv("VPS_BACKEND", "OpenVino2")
    with pytest.raises(UsageError, match=r"\$VPS_BACKEND is 'OpenVino2', not one of auto, torch") as bad_env:
        choose_backend(None, "cpu")
    assert "unset it" in bad_env.value.fix
    assert choose_backend("torch", "cpu").backend == "torch"  # --backend overrides the variable
    monkeypatch.setenv("VPS_BACKEND", "onnxruntime")
    for args, text in [
        (("nonsense", "cpu"), "--backend must be one of"),
        (("onnxruntime", "cpu", "bf16"), "fp32"),
        (("openvino", "cpu", "fp16"), "fp32"),
        (("torch", "cpu", "int8"), "--backend openvino"),
    ]:
        with pytest.raises(UsageError, match=text):
            choose_backend(*args)
    with pytest.raises(UsageError, match="--compile is torch's"):
        choose_backend("openvino", "cpu", compiling=True)
    with pytest.raises(UsageError, match="--calibration calibrates --precision int8 only"):
        choose_backend("openvino", "cpu", "fp32", calibration="frames/")


def test_a_missing_runtime_names_the_install(monkeypatch):
    from vpscli.backends import runtimes

    monkeypatch.setattr(runtimes, "version_of", lambda package: None)
    monkeypatch.setattr(runtimes.importlib, "import_module", lambda n: (_ for _ in ()).throw(ImportError(n)))
    with pytest.raises(UsageError) as e:
        runtimes.runtime("openvino").require()
    assert "not installed" in e.value.message and "pip install 'vps[fast]'" in e.value.fix
    assert not runtimes.installed("onnxruntime")


@needs["openvino"]
def test_segment_records_the_backend_and_auto_runs_openvino(tmp_path, monkeypatch):
    """``vps segment`` with the default ``--backend auto`` runs OpenVINO, records it in run.json, and its
    masks equal torch's but where a probability sits within one level of the threshold."""
    from typer.testing import CliRunner

    from vpscli.cli import app
    from vpscli.models import save_checkpoint
    from vpscli.synth import SynthConfig, write_clip

    write_clip(tmp_path, SynthConfig(frames=12, width=160, height=112, seed=4), "mp4", "v")
    ckpt = save_checkpoint(
        trained_like("pns-net", TINY["pns-net"], backbone=LITE), tmp_path / "w.safetensors"
    )
    base = ["segment", str(tmp_path / "v.mp4"), "-w", str(ckpt), "--no-overlay", "--save-prob", "-q"]
    base += ["--cache-dir", str(tmp_path / "cache"), "--min-persistence", "1", "--threshold", "0.45"]
    monkeypatch.delenv("VPS_BACKEND")
    r = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "auto")])
    assert r.exit_code == 0, r.output
    # torch's own `auto` is bf16 on a CPU with AMX: the reference is fp32, as OpenVINO's graph computes it here
    r = CliRunner().invoke(
        app, [*base, "-o", str(tmp_path / "torch"), "--backend", "torch", "--precision", "fp32"]
    )
    assert r.exit_code == 0, r.output
    auto = json.loads((tmp_path / "auto" / "v" / "run.json").read_text())
    assert auto["backend"].startswith("openvino ") and auto["backend"].endswith(" fp32")
    assert auto["numerics"]["backend"] == auto["backend"]
    ref = json.loads((tmp_path / "torch" / "v" / "run.json").read_text())
    assert ref["backend"].startswith("torch ")
    import cv2

    def grey(path):
        return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(int)

    near = differ = 0
    probs = sorted((tmp_path / "torch" / "v" / "probs").glob("*.png"))
    assert len(probs) == 12
    for p in probs:
        a, b = grey(p), grey(tmp_path / "auto" / "v" / "probs" / p.name)
        assert np.abs(a - b).max() <= 1  # floor(255·p): one level at most
        ma = grey(tmp_path / "torch" / "v" / "masks" / p.name) > 0
        mb = grey(tmp_path / "auto" / "v" / "masks" / p.name) > 0
        differ += int((ma != mb).sum())
        near += int(((ma != mb) & (np.abs(a - 0.45 * 255) <= 1.5)).sum())
    assert differ == near  # masks differ only where the probability is within a level of the threshold


@needs["openvino"]
def test_tta_and_batches_run_on_a_compiled_backend(tmp_path):
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source
    from vpscli.models import save_checkpoint
    from vpscli.synth import SynthConfig, write_clip

    write_clip(tmp_path, SynthConfig(frames=11, width=112, height=64, seed=5), "mp4", "v")
    ckpt = save_checkpoint(
        trained_like("pns-plus", TINY["pns-plus"], backbone=LITE), tmp_path / "w.safetensors"
    )
    for kw in ({"tta": True}, {"batch": 2}):
        torch_run = Segmenter("pns-plus", ckpt, device="cpu", backend="torch", precision="fp32", **kw)
        ov_run = Segmenter("pns-plus", ckpt, device="cpu", backend="openvino", cache_dir=tmp_path / "c", **kw)
        assert ov_run.backend == "openvino"
        a = [r.prob for r in torch_run.run(open_source(tmp_path / "v.mp4"))]
        b = [r.prob for r in ov_run.run(open_source(tmp_path / "v.mp4"))]
        assert len(a) == len(b) == 11
        assert max(np.abs(x.astype(int) - y.astype(int)).max() for x, y in zip(a, b)) <= 1
    # two videos at once share the compiled model (`vps segment --jobs 2`): each as when run alone
    from vpscli.engine import SegmentOptions, segment_many

    write_clip(tmp_path, SynthConfig(frames=9, width=112, height=64, seed=8), "mp4", "w")
    outs = {}
    for jobs in (1, 2):
        sources = [open_source(tmp_path / "v.mp4"), open_source(tmp_path / "w.mp4")]
        opts = SegmentOptions(out_root=tmp_path / f"jobs{jobs}", overlay=False, save_prob=True)
        reports, failures = segment_many(ov_run, sources, opts, jobs=jobs)
        assert not failures and len(reports) == 2
        outs[jobs] = {
            p.relative_to(tmp_path / f"jobs{jobs}"): p.read_bytes()
            for p in (tmp_path / f"jobs{jobs}").glob("*/probs/*.png")
        }
    assert len(outs[1]) == 20 and outs[1] == outs[2]


@pytest.mark.skipif(
    not installed("openvino") or importlib.util.find_spec("nncf") is None, reason="needs openvino and nncf"
)
def test_int8_is_calibrated_on_the_given_frames_and_recorded(tmp_path, monkeypatch):
    """The bundled default model quantised on one synthetic clip keeps its masks on another."""
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source
    from vpscli.synth import SynthConfig, write_clip

    write_clip(tmp_path, SynthConfig(frames=6, width=224, height=160, seed=6), "mp4", "v")
    write_clip(tmp_path, SynthConfig(frames=20, width=224, height=160, seed=7), "mp4", "calib")
    kw = {"device": "cpu", "backend": "openvino", "cache_dir": tmp_path / "c"}
    with pytest.raises(UsageError, match="--calibration"):
        Segmenter(precision="int8", **kw)
    fp32 = Segmenter(**kw)
    int8 = Segmenter(precision="int8", calibration=tmp_path / "calib.mp4", **kw)
    assert int8.precision == "int8" and int8.backend_text.endswith(" int8")
    assert int8.graph_cache != fp32.graph_cache and "int8" in int8.graph_cache.name
    a = np.stack([r.prob for r in fp32.run(open_source(tmp_path / "v.mp4"))]).astype(int)
    b = np.stack([r.prob for r in int8.run(open_source(tmp_path / "v.mp4"))]).astype(int)
    # quantised, so not the fp32 answers, but nearly the same masks
    assert np.abs(a - b).max() > 0
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    ma, mb = a >= 128, b >= 128
    assert 2 * (ma & mb).sum() / (ma.sum() + mb.sum()) > 0.97
    # the command line reaches the same cached int8 model
    from typer.testing import CliRunner

    from vpscli.cli import app

    args = ["segment", str(tmp_path / "v.mp4"), "-o", str(tmp_path / "out"), "--no-overlay", "-q"]
    args += ["--backend", "openvino", "--precision", "int8", "--calibration", str(tmp_path / "calib.mp4")]
    r = CliRunner().invoke(app, [*args, "--cache-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "out" / "v" / "run.json").read_text())
    assert record["precision"] == "int8" and record["backend"].endswith(" int8")
    assert len(list((tmp_path / "c" / "graphs").iterdir())) == 2  # fp32 and int8, nothing rebuilt
    # a later run finds the int8 graphs by the calibration files' fingerprints, without a pass over them
    passes = []
    real_run = Segmenter.run
    monkeypatch.setattr(Segmenter, "run", lambda self, *a, **k: passes.append(1) or real_run(self, *a, **k))
    again = Segmenter(precision="int8", calibration=tmp_path / "calib.mp4", **kw)
    assert passes == [] and again.graph_cache == int8.graph_cache and not again.graphs_built
    # other calibration frames make another entry, calibrated on them
    write_clip(tmp_path, SynthConfig(frames=20, width=224, height=160, seed=8), "mp4", "other")
    said: list[tuple[str, int]] = []  # each note with the passes over calibration frames made by then
    other = Segmenter(
        precision="int8",
        calibration=tmp_path / "other.mp4",
        on_convert=lambda message: said.append((message, len(passes))),
        **kw,
    )
    assert passes == [1] and other.graphs_built and other.graph_cache != int8.graph_cache
    # announced before the pass over the calibration frames (the fp32 model it runs is cached: no other note)
    assert said == [
        (
            "building the int8 model (the calibration frames through the fp32 model, then quantisation) for "
            f"openvino once, into {other.graph_cache} (later runs load it)",
            0,
        )
    ]


@needs["onnxruntime"]
def test_training_validation_on_a_compiled_backend_equals_torchs(tmp_path):
    """``vps train --val-backend``: the figures equal torch's (the maps within one 8-bit level), the model
    is left in training mode and no converted graph is left behind."""
    from vpscli.synth import SynthConfig, write_clip
    from vpscli.train.sources import discover_source
    from vpscli.train.validate import validate

    write_clip(tmp_path / "data", SynthConfig(frames=8, width=176, height=96, seed=31), "frames", "case")
    model = trained_like("pns-net", TINY["pns-net"], backbone=LITE).train()
    sources = [discover_source(tmp_path / "data")]
    want = validate(model, sources, torch.device("cpu")).metrics
    got = validate(model, sources, torch.device("cpu"), backend="onnxruntime").metrics
    assert set(got) == set(want) and model.training
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=2e-3), k
    assert 0.05 < want["maxDice"] < 0.999  # a real score, not a degenerate one


def test_doctor_reports_the_backends_and_the_cache(monkeypatch, tmp_path):
    from vpscli.doctor import collect

    monkeypatch.setenv("VPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("VPS_BACKEND")
    b = collect()["backends"]
    assert b["torch"] == importlib.metadata.version("torch") and b["cache"] == str(tmp_path / "cache")
    assert b["auto_on_cpu"] == ("openvino" if installed("openvino") else "torch") and b["default"] == "auto"
    assert (b["openvino"] is not None) == installed("openvino") and b["default_error"] is None
    monkeypatch.setenv("VPS_BACKEND", "cuda")
    report = collect()
    assert not report["ok"] and report["backends"]["default"] == "cuda"
    assert report["backends"]["default_error"].startswith("$VPS_BACKEND is 'cuda', not one of auto")
    assert any(p.startswith("$VPS_BACKEND is 'cuda', not one of auto") for p in report["problems"])
    # the row says so in place of what auto would run
    from typer.testing import CliRunner

    from vpscli.cli import app

    r = CliRunner().invoke(app, ["doctor"])
    assert r.exit_code == 1 and "$VPS_BACKEND (cuda) names no backend" in r.output


@needs["openvino"]
@pytest.mark.parametrize("name", ["pns-net", "aen-cffm"])
def test_each_precision_keeps_its_own_compiled_blob(nets, name, converted, tmp_path):
    """OpenVINO names its compiled blobs by the model, not by the precision hint: an fp32 run and a bf16 run
    of one entry keep theirs apart, and the bf16 run after the fp32 one computes what a bf16 run alone does
    (on a CPU without bf16 units OpenVINO runs the hint in fp32: the same rule, equal answers)."""
    from vpscli.backends.runtimes import compiled_cache

    net = nets[name]
    video = _video(net, 10)
    # the same converted graph in two caches (a conversion each would only cost seconds)
    a, b = _seeded(converted, tmp_path / "a", net), _seeded(converted, tmp_path / "b", net)
    first = compile_model(net, "openvino", precision="bf16", cache_dir=a, threads=1)
    alone = _drive(first, video, False)
    fp32 = compile_model(net, "openvino", precision="fp32", cache_dir=b, threads=1)
    assert not first.built and not fp32.built
    _drive(fp32, video, False)
    after = compile_model(net, "openvino", precision="bf16", cache_dir=b, threads=1)
    assert not after.built  # the converted graph is shared; only the compiled form is not
    assert _max_diff(_drive(after, video, False), alone) == 0.0
    blobs = sorted((after.cache_entry / "openvino-compiled").rglob("*.blob"))
    assert [b.parent for b in blobs] == sorted(compiled_cache(after.cache_entry, p) for p in ("bf16", "fp32"))


@needs["openvino"]
def test_openvinos_compiled_blob_is_kept_in_the_entry_and_a_damaged_one_recompiled(nets, converted, tmp_path):
    net = nets["pns-net"]
    video = _video(net, 10)
    _seeded(converted, tmp_path, net)
    first = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    want = _drive(first, video, False)
    from vpscli.backends.runtimes import compiled_cache

    blobs = list(compiled_cache(first.cache_entry, "fp32").glob("*.blob"))
    assert len(blobs) == 1
    blobs[0].chmod(0o644)
    blobs[0].write_bytes(b"damaged")
    again = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    assert not again.built and _max_diff(_drive(again, video, False), want) == 0.0
    assert blobs[0].stat().st_size > 1000  # OpenVINO wrote it again


@needs["openvino"]
def test_each_cpu_keeps_its_own_compiled_blob(nets, converted, tmp_path, monkeypatch):
    """A cache shared by two machines whose CPUs OpenVINO names alike (a virtual machine's generic name)
    keeps a compiled form per CPU: the second machine compiles its own and answers the same."""
    from vpscli.backends import runtimes

    net = nets["pns-net"]
    video = _video(net, 10)
    _seeded(converted, tmp_path, net)
    first = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    want = _drive(first, video, False)
    here = runtimes.cpu_key()
    assert len(here) == 12 and int(here, 16) >= 0
    monkeypatch.setattr(runtimes, "cpu_key", lambda: "0123456789ab")
    other = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    assert not other.built and _max_diff(_drive(other, video, False), want) == 0.0
    folders = sorted(b.parent.name for b in (other.cache_entry / "openvino-compiled").rglob("*.blob"))
    assert folders == sorted(["fp32-0123456789ab", f"fp32-{here}"])


@needs["openvino"]
def test_an_entry_whose_compiled_folder_cannot_be_made_still_runs(nets, converted, tmp_path):
    """A cache on a read-only mount: OpenVINO refuses to compile when its CACHE_DIR cannot be created, so
    vps compiles without it (from the entry's files, every run) and answers the same."""
    net = nets["pns-net"]
    video = _video(net, 10)
    _seeded(converted, tmp_path, net)
    first = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    want = _drive(first, video, False)
    compiled = first.cache_entry / "openvino-compiled"
    shutil.rmtree(compiled)
    compiled.write_text("in the way")  # any folder that cannot be made there, as on a read-only mount
    again = compile_model(net, "openvino", cache_dir=tmp_path, threads=1)
    assert not again.built and _max_diff(_drive(again, video, False), want) == 0.0
    assert compiled.read_text() == "in the way"


def test_a_cache_that_cannot_be_written_is_one_line_naming_the_fix(nets, tmp_path, monkeypatch):
    from pathlib import Path

    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name.startswith(".staging-"):
            raise OSError(30, "Read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    backend = "openvino" if installed("openvino") else "onnxruntime"
    if not installed(backend):
        pytest.skip("neither OpenVINO nor ONNX Runtime is installed")
    with pytest.raises(InputError) as failed:
        compile_model(nets["pns-net"], backend, cache_dir=tmp_path, threads=1)
    message = str(failed.value)
    assert "the graph cache cannot be written (Read-only file system)" in message
    assert "pass --cache-dir a writable folder" in message and str(tmp_path / "graphs") in message
    assert list((tmp_path / "graphs").iterdir()) == []


@needs["openvino"]
@pytest.mark.parametrize("name", ["pns-plus", "aen-cffm"])
def test_openvino_runs_each_graph_at_the_fixed_shapes_the_driver_feeds(nets, name, converted):
    from vpscli.backends.runtimes import ov_read

    net = nets[name]
    model = compile_model(net, "openvino", cache_dir=converted, threads=1)
    graphs = graph_set(net).graphs
    assert len(graphs) == (2 if name == "pns-plus" else 1)
    for graph in graphs:
        read = ov_read(model.cache_entry, graph)
        shapes = [tuple(p.get_partial_shape().to_shape()) for p in read.inputs]
        assert all(p.get_partial_shape().is_static for p in read.inputs)
        assert shapes == [i.shape for i in graph.inputs]
    # the converted file itself stays dynamic: the fixed shapes are applied when it is read
    import openvino as ov

    raw = ov.Core().read_model(str(model.cache_entry / "step.xml"))
    assert not all(p.get_partial_shape().is_static for p in raw.inputs)


@needs["onnxruntime"]
def test_a_model_that_fails_to_convert_is_one_line_naming_the_fix(nets, tmp_path, monkeypatch):
    from dataclasses import replace

    from vpscli.backends import runtimes

    def broken(graph, folder):
        raise RuntimeError("unsupported operator aten::frobnicate\nwith a traceback below")

    monkeypatch.setitem(
        runtimes.RUNTIMES, "onnxruntime", replace(runtimes.RUNTIMES["onnxruntime"], convert=broken)
    )
    with pytest.raises(InputError) as e:
        compile_model(nets["pns-net"], "onnxruntime", cache_dir=tmp_path)
    assert "could not be converted" in e.value.message and "--backend torch" in e.value.fix
    assert "frobnicate" in e.value.message and "\n" not in e.value.one_line()
    assert not list((tmp_path / "graphs").iterdir())  # nothing half-written left


def _card(scores: dict | None):
    from vpscli.weights.manifest import WeightsEntry

    metrics = {"maxDice": 0.8} | ({"maxDice_by_precision": scores} if scores is not None else {})
    return WeightsEntry("w.safetensors", "pns-net", "0" * 64, LITE, (64, 96), record={"metrics": metrics})


@pytest.mark.parametrize(
    "scores, native, expected",
    [
        ({"fp32": 0.8369, "bf16": 0.8364}, True, "bf16"),  # −0.0005: within the tolerance
        ({"fp32": 0.7366, "bf16": 0.7394}, True, "bf16"),  # a gain
        ({"fp32": 0.8369, "bf16": 0.8348}, True, "fp32"),  # −0.0021: loses more than 0.002
        ({"fp32": 0.8369}, True, "fp32"),  # bf16 not measured
        (None, True, "fp32"),  # no record at all
        ({"fp32": 0.8369, "bf16": 0.8364}, False, "fp32"),  # the CPU would emulate bf16
    ],
)
def test_auto_precision_follows_the_model_card_and_the_cpu(monkeypatch, scores, native, expected):
    from dataclasses import replace

    from vpscli.backends import PRECISION_TOLERANCE, card_precision, runtimes

    assert PRECISION_TOLERANCE == 0.002
    monkeypatch.setitem(
        runtimes.RUNTIMES, "openvino", replace(runtimes.RUNTIMES["openvino"], native_bf16=lambda: native)
    )
    precision, note = card_precision("openvino", _card(scores))
    assert precision == expected
    assert (note is not None) == (expected == "bf16")
    if note:
        assert (
            f"{scores['bf16']:.4f}" in note and f"{scores['fp32']:.4f}" in note and "--precision fp32" in note
        )
    assert card_precision("openvino", None) == ("fp32", None)  # weights without a model card
    assert card_precision("onnxruntime", _card({"fp32": 0.8, "bf16": 0.8})) == ("fp32", None)


@needs["openvino"]
@pytest.mark.parametrize("native", [True, False])
def test_a_segmenter_runs_the_card_precision_only_when_asked_for_auto(tmp_path, monkeypatch, native):
    from dataclasses import replace

    from vpscli.backends import runtimes
    from vpscli.engine import Segmenter
    from vpscli.weights.store import LoadedModel

    monkeypatch.setitem(
        runtimes.RUNTIMES, "openvino", replace(runtimes.RUNTIMES["openvino"], native_bf16=lambda: native)
    )
    # torch's `auto` follows its own rule (bf16 only with AMX), never the card: a CPU without AMX here
    monkeypatch.setattr("vpscli.engine.device.cpu_has_amx", lambda: False)
    net = trained_like("pns-net", TINY["pns-net"], backbone=LITE)
    loaded = LoadedModel(net, entry=_card({"fp32": 0.81, "bf16": 0.809}))
    auto = Segmenter(loaded, device="cpu", backend="openvino", cache_dir=tmp_path)
    assert auto.precision == ("bf16" if native else "fp32") and auto.backend_text.endswith(auto.precision)
    assert ("bf16: this CPU computes it natively" in (auto.placement.note or "")) == native
    fixed = Segmenter(loaded, device="cpu", backend="openvino", precision="fp32", cache_dir=tmp_path)
    assert fixed.precision == "fp32"
    assert Segmenter(loaded, device="cpu", backend="torch").precision == "fp32"
