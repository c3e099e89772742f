"""The runtimes a step graph is compiled for: OpenVINO and ONNX Runtime (optional installs), and the
graph modules run by torch itself (what the tests compare the others with).

Each runtime converts a :class:`~vpscli.backends.graphs.StepGraph` to files in a folder (``convert``)
and loads those files as a callable (``load``); :mod:`vpscli.backends.store` decides when to convert.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from vpscli.backends.driver import RunGraph
from vpscli.backends.graphs import StepGraph
from vpscli.errors import UsageError
from vpscli.versions import version_of

__all__ = ["Runtime", "RUNTIMES", "runtime", "installed", "run_torch_graph", "ov_read"]

#: what each runtime's precision choices are called here
PRECISIONS = {"openvino": ("fp32", "bf16", "int8"), "onnxruntime": ("fp32",)}

#: the telemetry package OpenVINO's converter (loaded by ``import openvino``) and NNCF send usage statistics
#: with, to Google Analytics, unless the user has opted out: a forked process and a connection on every run.
#: vps uses no network at run time, so the package is made unimportable in its processes before vps imports
#: either (every import of them in vps goes through this module); both then fall back to their own no-op
#: stubs, as when it is not installed. A process that loaded OpenVINO before vps keeps its own setting.
TELEMETRY_PACKAGE = "openvino_telemetry"
sys.modules.setdefault(TELEMETRY_PACKAGE, None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Runtime:
    """An inference runtime: its name, the Python package that provides it, what to install."""

    name: str
    package: str
    install: str
    convert: Callable[[StepGraph, Path], list[str]]
    load: Callable[[Path, StepGraph, str, int], RunGraph]
    #: whether the runtime computes bf16 with this CPU's own bf16 instructions (else it has no bf16, or
    #: emulates it, slower than fp32)
    native_bf16: Callable[[], bool] = lambda: False

    def version(self) -> str | None:
        return version_of(self.package)

    def require(self) -> str:
        """The installed version; refuses, naming the install command, when the package is missing
        or cannot be imported."""
        version = self.version()
        try:
            importlib.import_module(self.package)
        except Exception as e:  # noqa: BLE001 - a broken install is reported, not raised through
            raise UsageError(
                f"--backend {self.name} needs the {self.package} package"
                + (f" ({type(e).__name__}: {e})" if version else ", which is not installed"),
                fix=f"pip install {self.install} (or use --backend torch)",
            ) from None
        return version or "unknown"


def installed(name: str) -> bool:
    """Whether runtime ``name`` can be imported (``vps doctor``, ``--backend auto``)."""
    try:
        runtime(name).require()
    except UsageError:
        return False
    return True


# -- OpenVINO -----------------------------------------------------------------------------------------

_CORE = None


def _ov_core():
    global _CORE
    if _CORE is None:
        import openvino as ov

        _CORE = ov.Core()
    return _CORE


def _ov_native_bf16() -> bool:
    """OpenVINO lists ``BF16`` among the CPU's capabilities where it has bf16 units (AVX-512 BF16, AMX)."""
    try:
        return "BF16" in _ov_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - a runtime that cannot say runs fp32
        return False


def _ov_convert(graph: StepGraph, folder: Path) -> list[str]:
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(graph.module, example_input=graph.examples())
    xml = folder / f"{graph.name}.xml"
    # fp16 compression of the weights would change the answers: the weights stay as trained (fp32)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return [xml.name, xml.with_suffix(".bin").name]


def ov_read(folder: Path, graph: StepGraph):
    """The converted graph in ``folder``, its inputs fixed to the graph's shapes.

    The converted file has dynamic dimensions; the driver feeds each input one fixed shape, and fixed
    shapes let OpenVINO fuse operations and pick its kernels ahead of time (measured, one thread, bf16:
    the default pns-net-lite2-448's 5-frame step 190 → 143 ms, aen-cffm-lite2's 3-frame step 447 →
    356 ms). A dynamic batch dimension alone keeps the slow path.
    """
    model = _ov_core().read_model(str(folder / f"{graph.name}.xml"))
    model.reshape({port: list(inp.shape) for port, inp in zip(model.inputs, graph.inputs, strict=True)})
    return model


def compiled_cache(folder: Path, precision: str) -> Path:
    """Where OpenVINO keeps its compiled form of the entry ``folder``'s graphs run at ``precision`` on this
    CPU (:func:`cpu_key`)."""
    return folder / "openvino-compiled" / f"{precision}-{cpu_key()}"


@functools.cache
def cpu_key() -> str:
    """12 hex digits naming the CPU a compiled form is made for: OpenVINO's name for it, the capabilities
    OpenVINO reports and (on Linux) the vector instruction sets the kernel lists. OpenVINO keys its blobs by
    the CPU's name alone, which a virtual machine often reduces to "Intel(R) Xeon(R) Processor" whatever the
    host; a cache shared by several machines (a network home folder) keeps one compiled form per CPU."""
    core = _ov_core()
    parts = [
        str(core.get_property("CPU", "FULL_DEVICE_NAME")),
        " ".join(sorted(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))),
    ]
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), ":").split(":", 1)[1].split()
        parts.append(" ".join(sorted(x for x in flags if x.startswith(("avx", "amx", "fma", "f16c", "sse")))))
    except OSError:
        pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _cache_config(folder: Path, precision: str) -> dict[str, str]:
    """OpenVINO's ``CACHE_DIR`` setting for the entry, or none where the folder cannot be made (a cache on
    a read-only mount): OpenVINO would refuse to compile at all, while without it the model is compiled
    from the entry's files on every run (0.3–0.8 s more at start-up on 2 cores). An existing folder that
    cannot be written is kept: OpenVINO reads the blobs in it and writes none."""
    cache = compiled_cache(folder, precision)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {}
    return {"CACHE_DIR": str(cache)}


def _ov_load(folder: Path, graph: StepGraph, precision: str, threads: int) -> RunGraph:
    core = _ov_core()
    model = ov_read(folder, graph)
    # OpenVINO's CPU plugin computes in bf16 by default where the CPU has it: ask for what was chosen
    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
        # OpenVINO's own cache of the compiled model (1 s → 0.1 s at start-up), inside the entry: removed
        # with it; OpenVINO recompiles a blob it cannot read. One folder per precision: OpenVINO names a
        # blob by the model and not by the precision hint, so a bf16 run would load an fp32 run's blob
        # (measured on aen-cffm-lite2: validation maxDice 0.095 instead of 0.835)
        **_cache_config(folder, precision),
    }
    compiled = core.compile_model(model, "CPU", config)
    n_out = len(graph.outputs)
    # an infer request is not thread-safe: one per thread (``vps segment --jobs`` shares the model)
    local = threading.local()

    def run(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        request.infer(list(inputs))
        return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(n_out)]

    return run


# -- ONNX Runtime -------------------------------------------------------------------------------------


def _ort_convert(graph: StepGraph, folder: Path) -> list[str]:
    path = folder / f"{graph.name}.onnx"
    with torch.no_grad():
        torch.onnx.export(
            graph.module,
            graph.examples(),
            str(path),
            input_names=[i.name for i in graph.inputs],
            output_names=list(graph.outputs),
            opset_version=17,
            dynamo=False,
        )
    return [path.name]


def _ort_load(folder: Path, graph: StepGraph, precision: str, threads: int) -> RunGraph:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(folder / f"{graph.name}.onnx"), options, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]

    def run(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(session.run(None, dict(zip(names, inputs))))

    return run


RUNTIMES = {
    "openvino": Runtime("openvino", "openvino", "'vps[fast]'", _ov_convert, _ov_load, _ov_native_bf16),
    "onnxruntime": Runtime("onnxruntime", "onnxruntime", "'vps[fast]'", _ort_convert, _ort_load),
}


def runtime(name: str) -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise UsageError(
            f"unknown backend {name!r}", fix="use one of: auto, torch, " + ", ".join(RUNTIMES)
        ) from None


def run_torch_graph(graph: StepGraph) -> RunGraph:
    """The graph module itself, run by torch on numpy arrays (the reference the runtimes are compared with)."""
    module = graph.module.eval()

    def run(inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            out = module(*[torch.from_numpy(np.asarray(a)) for a in inputs])
        out = out if isinstance(out, tuple) else (out,)
        return [o.float().numpy() for o in out]

    return run
