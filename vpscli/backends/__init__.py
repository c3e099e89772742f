"""Inference backends: a model's steps compiled for OpenVINO or ONNX Runtime, or run by torch.

``--backend auto`` (the default) runs OpenVINO on a CPU where it is installed, else torch; CUDA stays
torch. ``--precision auto`` on a compiled backend is fp32, or bf16 where the CPU computes bf16 natively and
the weights' model card shows bf16 costing at most :data:`PRECISION_TOLERANCE` validation maxDice
(:func:`card_precision`). :func:`compile_model` exports a model's step graphs (:mod:`vpscli.backends.graphs`), converts them
once into the disk cache (:mod:`vpscli.backends.store`) and returns a
:class:`~vpscli.backends.driver.CompiledModel` that the inference driver runs like the model itself.

Example::

    from vpscli.backends import compile_model
    from vpscli.models import build_model

    net = build_model("pns-net", backbone="efficientnet-lite2", input_size=(160, 224)).eval()
    model = compile_model(net, "openvino")
    logits, state = model(model.preprocess(frames)[None], model.init_state())
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from vpscli.errors import UsageError

if TYPE_CHECKING:
    from vpscli.engine.device import Placement

__all__ = [
    "BACKENDS",
    "resolve_backend",
    "compile_model",
    "default_backend",
    "check_backend_precision",
    "card_precision",
    "PRECISION_TOLERANCE",
    "choose_backend",
    "BackendChoice",
]

#: what ``--backend`` accepts
BACKENDS = ("auto", "torch", "openvino", "onnxruntime")


def default_backend() -> str:
    """``$VPS_BACKEND`` when set (a deployment's or a test suite's choice), else ``auto``.

    Raises:
        UsageError: ``$VPS_BACKEND`` names no backend (the message names the variable, not ``--backend``).
    """
    name = (os.environ.get("VPS_BACKEND") or "auto").lower()
    if name not in BACKENDS:
        raise UsageError(
            f"$VPS_BACKEND is {os.environ['VPS_BACKEND']!r}, not one of {', '.join(BACKENDS)}",
            fix="set it to one of them, unset it, or pass --backend",
        )
    return name


def resolve_backend(requested: str | None, device_type: str) -> tuple[str, str | None]:
    """The backend a run uses, and a note when ``auto`` chose it: ``(name, note)``.

    Raises:
        UsageError: an unknown name, or a compiled backend asked for on a CUDA device.
    """
    name = (requested or default_backend()).lower()
    if name not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if name == "auto":
        if device_type != "cpu":
            return "torch", None
        if importlib.util.find_spec("openvino") is not None:  # found, not imported: a quick answer
            return "openvino", None
        return (
            "torch",
            "OpenVINO is not installed: running on torch (pip install 'vps[fast]' runs the model 2× faster)",
        )
    if name != "torch" and device_type != "cpu":
        raise UsageError(
            f"--backend {name} runs on the CPU, but the device is {device_type}",
            fix="use --backend torch on a GPU (or --device cpu)",
        )
    return name, None


#: a precision other than fp32 becomes a model's default where its validation maxDice, as the weights' model
#: card records it, is at most this much below fp32's
PRECISION_TOLERANCE = 0.002


def card_precision(backend: str, entry) -> tuple[str, str | None]:
    """``--precision auto`` on a compiled backend, once the weights are known: ``(precision, note)``.

    ``bf16`` where the runtime computes bf16 with this CPU's own instructions and the weights' manifest
    entry (``entry``: a :class:`~vpscli.weights.WeightsEntry` or ``None``) records, under
    ``metrics.maxDice_by_precision``, a bf16 validation maxDice at most :data:`PRECISION_TOLERANCE` below
    fp32's; else ``fp32`` (weights without that record included: their bf16 cost is not known).
    """
    from vpscli.backends.runtimes import PRECISIONS, runtime

    if "bf16" not in PRECISIONS.get(backend, ()) or entry is None:
        return "fp32", None
    scores = (entry.record.get("metrics") or {}).get("maxDice_by_precision") or {}
    fp32, bf16 = scores.get("fp32"), scores.get("bf16")
    if fp32 is None or bf16 is None or bf16 < fp32 - PRECISION_TOLERANCE:
        return "fp32", None
    if not runtime(backend).native_bf16():
        return "fp32", None
    return "bf16", (
        f"bf16: this CPU computes it natively and {entry.file} validates at maxDice {bf16:.4f} in bf16 "
        f"against {fp32:.4f} in fp32 (--precision fp32 for torch's answers to 1/255)"
    )


def check_backend_precision(backend: str, precision: str) -> str:
    """The precision a compiled backend runs at (``auto`` → ``fp32``); refuses what it cannot do."""
    from vpscli.backends.runtimes import PRECISIONS

    precision = (precision or "auto").lower()
    if precision == "auto":
        return "fp32"
    allowed = PRECISIONS[backend]
    if precision not in allowed:
        raise UsageError(
            f"--backend {backend} runs at {' or '.join(allowed)}, not {precision}",
            fix=f"use --precision {allowed[0]}"
            + (" (bf16 and int8: --backend openvino)" if backend != "openvino" else ""),
        )
    return precision


@dataclass(frozen=True)
class BackendChoice:
    """What runs a model: ``backend``, the ``precision`` it computes at, the torch ``placement`` (the
    device; its autocast applies to the torch backend only) and a ``note`` for the user."""

    backend: str
    precision: str
    placement: Placement
    note: str | None = None
    #: ``--backend auto`` chose it (a network no graph covers then runs on torch instead)
    automatic: bool = False
    #: ``--precision auto`` on a compiled backend: ``precision`` (fp32) until the weights are known
    #: (:func:`card_precision`)
    auto_precision: bool = False


def choose_backend(
    backend: str | None,
    device: str = "auto",
    precision: str = "auto",
    compiling: bool = False,
    calibration: str | Path | None = None,
) -> BackendChoice:
    """Resolve ``--backend``, ``--device`` and ``--precision`` together, before anything is loaded.

    ``torch.compile`` (``compiling``) is torch's, so ``auto`` then means torch.

    Raises:
        UsageError: a value that cannot work, or a combination (int8 on torch, --compile on OpenVINO).
    """
    from vpscli.engine.device import resolve_device, resolve_placement

    if calibration is not None and (precision or "").lower() != "int8":
        raise UsageError(
            "--calibration calibrates --precision int8 only",
            fix="add --precision int8, or drop --calibration",
        )
    requested = (backend or default_backend()).lower()
    if compiling and requested == "auto":
        requested = "torch"
    name, note = resolve_backend(requested, resolve_device(device)[0].type)
    automatic = requested == "auto"
    if name != "torch" and automatic and (precision or "auto").lower() == "fp16":
        name = "torch"  # fp16 autocast is torch's
    if name == "torch":
        if (precision or "").lower() == "int8":
            raise UsageError("--precision int8 needs --backend openvino")
        placement = resolve_placement(device, precision)
        return BackendChoice(name, placement.precision, placement, note, automatic)
    if compiling:
        raise UsageError(f"--compile is torch's: use --backend torch, not {name}")
    run_precision = check_backend_precision(name, precision)
    if run_precision == "int8" and calibration is None:
        raise UsageError(
            "--precision int8 needs calibration frames",
            fix="pass --calibration with videos or frames like the ones you segment",
        )
    placement = resolve_placement(device, "fp32")
    auto = (precision or "auto").lower() == "auto"
    return BackendChoice(name, run_precision, placement, note, automatic, auto_precision=auto)


def _state_sha256(net) -> str:
    """sha256 over a network's parameters and buffers (a model built in memory has no weights file)."""
    h = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def compile_model(
    net,
    backend: str,
    *,
    precision: str = "fp32",
    weights_sha256: str | None = None,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    calibration: Sequence[list[np.ndarray]] | Callable[[], Sequence[list[np.ndarray]]] | None = None,
    calibration_key: str | None = None,
    on_convert: Callable[[str], None] | None = None,
):
    """``net`` (a :class:`~vpscli.models.base.VideoModel`, eval mode) compiled for ``backend``.

    Args:
        backend: ``openvino`` or ``onnxruntime``.
        precision: ``fp32``; with OpenVINO also ``bf16`` (the CPU's bf16 units where it has them) and
            ``int8`` (post-training quantisation with NNCF; needs ``calibration``).
        weights_sha256: the weights file's sha256 (the cache key); default: a hash of ``net``'s state.
        cache_dir: the cache's root (:func:`~vpscli.backends.store.cache_root`).
        threads: the runtime's threads (default: :func:`~vpscli.engine.device.compiled_cpu_threads`).
        calibration: int8 only: step-graph inputs recorded from the fp32 graph on representative frames
            (:meth:`CompiledModel.input_hook`), or a function that records them, called only when the int8
            graphs are not cached yet (it needs ``calibration_key``).
        calibration_key: int8 only: what names the calibration frames in the cache key (default: a hash
            of the recorded inputs).
        on_convert: called with a one-line message before the graphs are converted (seconds; int8: a
            pass over the calibration frames too), not when they are loaded from the cache.

    Returns:
        a :class:`~vpscli.backends.driver.CompiledModel`; its ``built`` says whether graphs were converted
        now, ``cache_entry`` where they live.

    Raises:
        UsageError: the runtime is not installed, or cannot do ``precision``.
        InputError: the cache cannot be written, or the model fails to convert.
    """
    from vpscli.backends.driver import CompiledModel
    from vpscli.backends.graphs import graph_set
    from vpscli.backends.runtimes import runtime
    from vpscli.backends.store import cache_root, conversion_error, entry_fields, open_entry
    from vpscli.engine.device import compiled_cpu_threads
    from vpscli.errors import InputError

    rt = runtime(backend)
    version = rt.require()
    precision = check_backend_precision(backend, precision)
    if precision == "int8" and not calibration:
        raise UsageError(
            "--precision int8 needs calibration frames",
            fix="pass --calibration with a video or frame folder like the ones you segment",
        )
    threads = int(threads or compiled_cpu_threads())
    net = net.eval()
    graphs = graph_set(net)
    spec = net.spec
    fields = {
        "model": spec.name,
        "backbone": spec.backbone,
        "input_size": list(spec.input_size),
        "clip_length": spec.clip_length,
        "weights_sha256": weights_sha256 or _state_sha256(net),
        "backend": backend,
        "backend_version": version,
        # bf16 is a compile-time setting of the fp32 files; int8 files differ
        "precision": "int8" if precision == "int8" else "fp32",
    }
    convert = rt.convert
    if precision == "int8":
        assert calibration is not None
        convert = _int8_plan(
            fields, rt.convert, graphs.graphs, cache_root(cache_dir), calibration, calibration_key
        )
    announce = _announcer(on_convert, precision, backend)
    try:
        entry, built = open_entry(
            cache_root(cache_dir), entry_fields(**fields), graphs.graphs, convert, announce
        )
    except (UsageError, InputError):
        raise
    except Exception as e:  # noqa: BLE001 - a conversion failure is one line, not a traceback
        what = f"{spec.name} could not be converted for {backend}"
        raise conversion_error(e, what, cache_root(cache_dir)) from None
    run_precision = "bf16" if precision == "bf16" else "fp32"
    step = rt.load(entry.folder, graphs.step, run_precision, threads)
    anchor = rt.load(entry.folder, graphs.anchor, run_precision, threads) if graphs.anchor else None
    model = CompiledModel(net, graphs, step, anchor, backend)
    model.version, model.precision, model.built, model.cache_entry = version, precision, built, entry.folder
    model.threads = threads
    return model


def _int8_plan(
    fields: dict,
    convert,
    graphs: tuple,
    root: Path,
    calibration: Sequence[list[np.ndarray]] | Callable[[], Sequence[list[np.ndarray]]],
    calibration_key: str | None,
):
    """The int8 entry's conversion (:func:`_int8_convert`), and its key's calibration and NNCF fields added
    to ``fields`` (the fp32 entry's until then)."""
    from vpscli.backends.store import entry_fields, open_entry
    from vpscli.versions import version_of

    if callable(calibration):
        if not calibration_key:
            raise ValueError("a calibration function needs its calibration_key")
        record = calibration
    else:
        samples = calibration
        calibration_key, record = calibration_key or _calibration_sha256(samples), lambda: samples
    fp32_fields = entry_fields(**{**fields, "precision": "fp32"})

    def fp32_folder() -> Path:
        # the fp32 entry, converted now only if it is not cached (the calibration pass usually made it)
        return open_entry(root, fp32_fields, graphs, convert)[0].folder

    fields["calibration"] = calibration_key
    fields["nncf"] = version_of("nncf")
    return _int8_convert(convert, record, fp32_folder)


def _announcer(
    on_convert: Callable[[str], None] | None, precision: str, backend: str
) -> Callable[[Path], None] | None:
    """``on_convert`` told in one line what a conversion into a cache entry's folder is about to do, and
    how to free the cache of older entries this installation will never load (a conversion is usually the
    first run after an upgrade, which is what leaves them)."""
    if on_convert is None:
        return None
    what = (
        "building the int8 model (the calibration frames through the fp32 model, then quantisation)"
        if precision == "int8"
        else "converting the model"
    )

    def announce(folder: Path) -> None:
        from vpscli.backends.store import stale_note

        # the entry's folder is <cache>/graphs/<entry>
        on_convert(
            f"{what} for {backend} once, into {folder} (later runs load it)" + stale_note(folder.parents[1])
        )

    return announce


def _calibration_sha256(samples: Sequence[list[np.ndarray]]) -> str:
    h = hashlib.sha256()
    for inputs in samples:
        for a in inputs:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _int8_convert(convert, record: Callable[[], Sequence[list[np.ndarray]]], fp32_folder: Callable[[], Path]):
    """NNCF's post-training quantisation of the fp32 entry's step graph (``fp32_folder()``: the same model's
    fp32 entry, read, never written) on the inputs ``record()`` gives (called only here, when the graphs are
    built; the anchor graph, run once a video, is converted as at fp32). The fp32 entry is asked for after
    ``record()``, whose pass through the fp32 graphs has usually cached it: the model is not converted a
    second time (the default model: about 7 s on 2 cores)."""

    def run(graph, folder: Path) -> list[str]:
        if graph.name != "step":
            return convert(graph, folder)
        try:
            import nncf
        except ImportError:
            raise UsageError(
                "--precision int8 needs the nncf package, which is not installed",
                fix="pip install 'vps[int8]'",
            ) from None
        import openvino as ov

        data = list(record())
        model = ov.Core().read_model(str(fp32_folder() / f"{graph.name}.xml"))
        with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars: not the user's output
            quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data))
        xml = folder / f"{graph.name}.xml"
        ov.save_model(quantized, str(xml), compress_to_fp16=False)
        del model, quantized
        return [xml.name, xml.with_suffix(".bin").name]

    return run
