"""Device and precision choice for inference.

- ``auto`` device: CUDA when available, else the CPU (the caller prints a notice).
- ``auto`` precision: bf16 autocast on CUDA (fp16 where the GPU lacks bf16); on the CPU
  fp32, except on CPUs with AMX bf16 units, where bf16 matmuls are several times faster.
  (CPUs without AMX run bf16 by emulation, slower than fp32: measured in
  ``benchmarks/bench_segment.py``.)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from vpscli.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Placement:
    """Where and how a model runs: ``device``, autocast ``dtype`` (``None`` = fp32), and a
    ``note`` for the user when a choice was made for them."""

    device: torch.device
    dtype: torch.dtype | None
    note: str | None = None

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


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
        return torch.device("cpu"), "no CUDA device found: running on the CPU (slow for long videos)"
    if spec == "cpu":
        return torch.device("cpu"), None
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
            raise UsageError(f"--device {spec}: CUDA is not available ({build})", fix="use --device cpu or auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)",
                             fix=f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
        return dev, None
    if spec == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps"), None
    raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {spec!r}")


def resolve_placement(device: str = "auto", precision: str = "auto") -> Placement:
    dev, note = resolve_device(device)
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
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
    return Placement(dev, dtype, note)
