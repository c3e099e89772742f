"""Where a model runs and how it is prepared for it: one resolver and one placement for the package
(``vps segment``, ``vps train`` and its validation).

- ``auto`` device: CUDA when available, else the CPU (the caller prints a notice).
- ``auto`` precision: bf16 autocast on CUDA (fp16 where the GPU lacks bf16); on the CPU
  fp32, except on CPUs with AMX bf16 units, where bf16 matmuls are several times faster.
  (CPUs without AMX run bf16 by emulation, slower than fp32: measured in
  ``benchmarks/bench_segment.py``.)
- memory format: channels-last on CUDA (tensor-core convolutions read NHWC), for the 4-D tensors
  it applies to; the NS blocks' 5-D ``Conv3d`` weights stay as they are (``Module.to(memory_format=
  channels_last)`` raises on them, which crashed every PNS model on CUDA).
- :func:`place_model` applies all of it, and every branch it takes on CUDA can be taken on the
  CPU too (a :class:`Placement` with ``channels_last=True``, an autocast dtype, ``compile``), so the
  CPU test suite runs the code a GPU runs.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vpscli.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Placement:
    """Where and how a model runs: ``device``, autocast ``dtype`` (``None`` = fp32), and a
    ``note`` for the user when a choice was made for them."""

    device: torch.device
    dtype: torch.dtype | None
    note: str | None = None
    #: convert the model's 4-D weights (and feed 4-D inputs) in channels-last memory format
    channels_last: bool = False

    @classmethod
    def on(
        cls, device: torch.device, dtype: torch.dtype | None = None, note: str | None = None
    ) -> "Placement":
        """The placement vps uses on ``device``: channels-last where it helps (CUDA)."""
        return cls(device, dtype, note, channels_last=device.type == "cuda")

    @classmethod
    def for_training(
        cls, device: torch.device, dtype: torch.dtype | None = None, note: str | None = None
    ) -> "Placement":
        """The placement ``vps train`` uses: channels-last on the CPU as well. oneDNN's backward
        convolutions are faster in NHWC (measured on a 2-core AVX2 CPU, ``benchmarks/bench_train.py``:
        see benchmarks/README.md), while at inference the CPU gains nothing measurable from it."""
        return cls(device, dtype, note, channels_last=device.type in ("cuda", "cpu"))

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def job_stream(placement: Placement):
    """The context one video's work runs in when several share the model (``vps segment --jobs``):
    on CUDA its own stream, so one video's kernels, copies and waits (``.cpu()`` of its outputs)
    never hold up another's and the GPU overlaps them; elsewhere nothing (threads suffice)."""
    if placement.device.type != "cuda":
        return contextlib.nullcontext()
    return torch.cuda.stream(torch.cuda.Stream(placement.device))


def jobs_cpu_threads(model_threads: int | None, jobs: int) -> int | None:
    """Intra-op threads of each of ``jobs`` videos sharing the CPU: the model's share
    (:func:`model_cpu_threads`) divided among them, at least 1 (torch's thread count is one per
    process; concurrent forward passes each start a team of that size)."""
    if jobs <= 1:
        return model_threads
    base = model_threads if model_threads is not None else torch.get_num_threads()
    return max(1, base // jobs)


def cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
        return "amx_bf16" in flags.split()
    except OSError:
        return False


def resolve_device(spec: str) -> tuple[torch.device, str | None]:
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), None
        return torch.device("cpu"), "no CUDA device found: running on the CPU (much slower than a GPU)"
    if spec == "cpu":
        return torch.device("cpu"), None
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
            raise UsageError(
                f"--device {spec}: CUDA is not available ({build})", fix="use --device cpu or auto"
            )
        try:
            dev = torch.device(spec)
        except RuntimeError:
            raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)",
                fix=f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}",
            )
        return dev, None
    if spec == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps"), None
    raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")


def resolve_placement(device: str = "auto", precision: str = "auto") -> Placement:
    dev, note = resolve_device(device)
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype: torch.dtype | None  # None: float32, no autocast
    if precision == "auto":
        if dev.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif dev.type == "cpu":
            dtype = torch.bfloat16 if cpu_has_amx() else None
        else:
            dtype = None
    elif precision == "fp32":
        dtype = None
    elif precision == "bf16":
        dtype = torch.bfloat16
    else:
        if dev.type != "cuda":
            raise UsageError("--precision fp16 needs a CUDA device", fix="use fp32 or bf16 on the CPU")
        dtype = torch.float16
    return Placement.on(dev, dtype, note)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store every 4-D parameter and buffer of ``model`` (``Conv2d`` weights) channels-last, in
    place; tensors of other ranks (the NS blocks' 5-D ``Conv3d`` weights, linear layers) keep
    their layout. Values are unchanged, only their order in memory."""
    with torch.no_grad():
        for module in model.modules():
            for _name, tensor in [*module._parameters.items(), *module._buffers.items()]:
                if tensor is not None and tensor.dim() == 4:
                    tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return model


#: ``torch.compile`` modes (``--compile-mode``): ``reduce-overhead`` records CUDA graphs and replays them
#: (a batch-1 stateful model spends most of its time launching kernels); ``max-autotune`` also searches
#: kernel configurations (minutes of start-up). On the CPU every mode compiles with inductor alone.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def check_compile_mode(mode: str | None) -> None:
    if mode is not None and mode not in COMPILE_MODES:
        raise UsageError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")


def place_model(
    model: nn.Module,
    placement: Placement,
    *,
    training: bool = False,
    compile: bool | str = False,
    mode: str | None = None,
):
    """Prepare ``model`` for ``placement``: moved to its device, in training or eval mode,
    channels-last where the placement says, and wrapped in ``torch.compile`` when asked
    (``compile``: ``True`` for torch's default backend, inductor, or a backend's name; ``mode``: one
    of :data:`COMPILE_MODES`, which implies compiling).

    Returns ``(model, forward)``: the module (for its state dict, ``init_state``, ``spec``) and
    what to call for a forward pass (the compiled wrapper, or the module itself). Autocast is
    :meth:`Placement.autocast`, around each call.
    """
    model = model.to(placement.device)
    model.train(training)
    if placement.channels_last:
        to_channels_last(model)
    if not compile and mode is None:
        return model, model
    check_compile_mode(mode)
    # keyword arguments of torch.compile, of several types
    options: dict[str, Any] = {} if compile in (True, None, False) else {"backend": compile}
    if mode not in (None, "default"):
        options["mode"] = mode
    return model, torch.compile(model, **options)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, cgroup cpusets), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def model_cpu_threads(requested: int | None = None, runtime: str = "torch") -> int | None:
    """Intra-op threads for a model running on the CPU while vps streams a video, or ``None`` to
    leave torch's own choice (the user set ``OMP_NUM_THREADS``).

    Args:
        requested: ``--threads`` (taken as given).
        runtime: what runs the model: ``torch``, ``openvino`` or ``onnxruntime``.

    Decoding, PNG writing and overlay encoding run beside the model. With torch's default (one
    OpenMP thread per core, spinning while it waits) the model's threads and the pipeline's
    oversubscribe the cores, and any other load on the machine makes it collapse: measured on a
    2-core CPU (``benchmarks/bench_contention.py``, 720p, bundled weights), 7.60 → 1.18 frames/s
    with two busy processes beside it. Keeping one core for the pipeline costs 19 % alone (6.13)
    and holds 4.11 frames/s under that load (3.5× the default). ONNX Runtime's threads spin too.

    OpenVINO's threads sleep when they have no work, so its model takes every core and shares them
    with the pipeline: measured on the same CPU (``vps segment``, bf16), aen-cffm-lite2 at 720p 8.5–8.9
    → 12.4–13.0 frames/s, the default at 720p 28.3 → 37.7, and under load no collapse (the default at 720p
    with two busy processes beside it: 15.4 frames/s on one thread, 15.1 on two).
    """
    if requested is not None:
        if requested < 1:
            raise UsageError(f"--threads must be at least 1, got {requested}")
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return usable_cpus() if runtime == "openvino" else max(1, usable_cpus() - 1)


#: a compiled runtime's model threads in this process (:func:`set_cpu_threads`); ``None``: torch's count
_compiled_threads: int | None = None


def set_cpu_threads(threads: int | None, compiled: int | None = None) -> None:
    """Apply :func:`model_cpu_threads` to this process: torch's intra-op threads (``threads``), a compiled
    runtime's (``compiled``, read by :func:`compiled_cpu_threads`; ``None``: torch's), and one thread
    for OpenCV (it runs inside the pipeline's own stages, which must not fan out over every core).

    torch keeps its own count when the model runs on OpenVINO: the pipeline's upsampling computes in
    torch, and its OpenMP threads must not spin on the cores OpenVINO's model uses."""
    import cv2

    global _compiled_threads
    if threads is not None:
        torch.set_num_threads(threads)
    _compiled_threads = compiled
    cv2.setNumThreads(1)


def compiled_cpu_threads() -> int:
    """The threads a compiled runtime's model gets: what :func:`set_cpu_threads` set, else torch's."""
    return _compiled_threads or torch.get_num_threads()
