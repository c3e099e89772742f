"""`vps segment` throughput when the machine is busy: thread settings under CPU contention.

Renders a synthetic clip (default 60 frames of 1280×720), then runs `vps segment` (bundled weights,
masks + overlay, CPU) with 0, 1, … N busy processes beside it (N = the usable CPUs), with torch's own
thread count (one thread per CPU: `--threads N`), with one CPU kept for the pipeline (`--threads N-1`)
and with vps's default (on torch N-1, on OpenVINO N; OpenCV single-threaded). Prints frames/s per setting
and load, and the ratio of each to the same setting alone. Each run is a fresh process, as a user's
would be.

    python benchmarks/bench_contention.py [--frames 60] [--size 1280x720] [--repeat 1] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def burn(stop) -> None:
    """A busy process: pure Python arithmetic until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def segment(video: Path, out: Path, threads: int | None, backend: str) -> float:
    """frames/s that `vps segment` reports in run.json."""
    shutil.rmtree(out, ignore_errors=True)
    args = [sys.executable, "-m", "vpscli", "segment", str(video), "-o", str(out), "--device", "cpu", "-q"]
    args += ["--backend", backend]
    if threads is not None:
        args += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    subprocess.run(args, check=True, capture_output=True, env=env)
    return json.loads((out / video.stem / "run.json").read_text())["frames_per_second"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell (the best is kept)")
    ap.add_argument("--backend", default="auto", help="vps segment --backend")
    args = ap.parse_args()
    from vpscli.engine.device import usable_cpus
    from vpscli.synth import SynthConfig, write_clip

    cpus = usable_cpus()
    w, h = (int(v) for v in args.size.split("x"))
    settings = {
        f"one thread per CPU (--threads {cpus})": cpus,
        f"one CPU kept for the pipeline (--threads {max(1, cpus - 1)})": max(1, cpus - 1),
        "vps default": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_clip(tmp, SynthConfig(frames=args.frames, width=w, height=h, seed=3), "mp4", "clip")
        table: dict[str, list[float]] = {name: [] for name in settings}
        for busy in range(cpus + 1):
            stop = mp.Event()
            burners = [mp.Process(target=burn, args=(stop,), daemon=True) for _ in range(busy)]
            for p in burners:
                p.start()
            time.sleep(0.5)
            try:
                for name, threads in settings.items():
                    table[name].append(
                        max(
                            segment(tmp / "clip.mp4", tmp / "out", threads, args.backend)
                            for _ in range(args.repeat)
                        )
                    )
            finally:
                stop.set()
                for p in burners:
                    p.join()
    print(
        f"vps segment --backend {args.backend}, {args.frames} frames {w}x{h}, bundled weights, masks + overlay, "
        f"{cpus} usable CPUs"
    )
    print(
        "| setting | "
        + " | ".join(f"{b} busy process{'es' if b != 1 else ''}" for b in range(cpus + 1))
        + " |"
    )
    print("|---|" + "---|" * (cpus + 1))
    for name, fps in table.items():
        cells = [f"{fps[0]:.2f}"] + [f"{f:.2f} ({f / fps[0]:.2f}×)" for f in fps[1:]]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
