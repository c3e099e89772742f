"""Each bundled weights file end to end: `vps segment` frames/s on a synthetic H.264 clip (masks + overlay), on
each backend, with and without `--tta`, all in one run on this machine — the speed column of the model card.

    python benchmarks/bench_bundled.py [--size 1280x720] [--frames 60] [--threads N] [--backends auto,torch]
        [--no-tta]

Weights: every entry of the bundled manifest, each run by its file (`-w`), at the input size it was trained
at, with its model card (so `--backend auto`'s precision is the card's). Two rates per run: run.json's
``frames_per_second`` (the video's frames over the run's wall time, start-up excluded) and the frames over
the whole command's wall time (start-up included: Python, torch, loading and the converted model's cache);
``--threads`` is the model's CPU threads (`vps segment --threads`; default: vps's own choice, as a user runs
it — the usable CPUs minus one on torch, all of them on OpenVINO).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    from vpscli.engine import Segmenter
    from vpscli.weights import bundled_entries

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backends", default="auto,torch", help="comma-separated --backend values")
    ap.add_argument("--no-tta", action="store_true", help="without the --tta runs")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vps-bundled-"))
    vps = [sys.executable, "-m", "vpscli"]
    subprocess.run(
        [
            *vps,
            "synth",
            str(work),
            "--frames",
            str(args.frames),
            "--size",
            args.size,
            "--seed",
            "11",
            "--name",
            "clip",
            "--quiet",
        ],
        check=True,
    )
    backends = args.backends.split(",")
    variants = [[]] if args.no_tta else [[], ["--tta"]]
    head = " | ".join(f"{b}{' --tta' if v else ''}" for b in backends for v in variants)
    print(
        f"frames/s at {args.size}, {args.frames} frames: start-up excluded (run.json) / included (command)\n"
    )
    print(f"| model | weights | input (W×H) | {head} |")
    print("|---|---|---|" + "---|" * (len(backends) * len(variants)))
    for entry in bundled_entries():
        rates = []
        for backend, extra in ((b, v) for b in backends for v in variants):
            out = work / f"{entry.file}-{backend}{'-tta' if extra else ''}"
            if backend != "torch":  # converted once beforehand, as a second run finds it in the cache
                Segmenter(entry.model, entry.path, device="cpu", backend=backend, tta=bool(extra))
            t0 = time.perf_counter()
            subprocess.run(
                [
                    *vps,
                    "segment",
                    str(work / "clip.mp4"),
                    "--model",
                    entry.model,
                    "-w",
                    str(entry.path),
                    "--backend",
                    backend,
                    "-o",
                    str(out),
                    "-q",
                    *(["--threads", str(args.threads)] if args.threads else []),
                    *extra,
                ],
                check=True,
                capture_output=True,
            )
            wall = time.perf_counter() - t0
            record = json.loads((out / "clip" / "run.json").read_text())
            rates.append(
                f"{record['frames_per_second']:.1f} / {args.frames / wall:.1f} ({record['backend']})"
            )
        h, w = entry.input_size or (0, 0)
        print(f"| {entry.model} | {entry.file} | {w}×{h} | " + " | ".join(rates) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
