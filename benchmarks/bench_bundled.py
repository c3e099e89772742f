"""Each bundled model end to end: `vps segment` frames/s on a synthetic H.264 clip (masks + overlay), with and
without `--tta`, all in one run on this machine — the speed column of the model card.

    python benchmarks/bench_bundled.py [--size 1280x720] [--frames 60] [--threads 1]

Models: every entry of the bundled manifest (each at the input size its weights were trained at).
frames/s is run.json's ``frames_per_second`` (the video's frames over the run's wall time, model start-up
excluded); ``--threads`` is the model's CPU threads (`vps segment --threads`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    from vpscli.weights import bundled_entries

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
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
    print(f"| model | weights | input (W×H) | frames/s at {args.size} | with --tta |")
    print("|---|---|---|---|---|")
    for entry in bundled_entries():
        rates = []
        for extra in ([], ["--tta"]):
            out = work / f"{entry.file}{'-tta' if extra else ''}"
            subprocess.run(
                [
                    *vps,
                    "segment",
                    str(work / "clip.mp4"),
                    "--model",
                    entry.model,
                    "-o",
                    str(out),
                    "-q",
                    "--threads",
                    str(args.threads),
                    *extra,
                ],
                check=True,
                capture_output=True,
            )
            rates.append(json.loads((out / "clip" / "run.json").read_text())["frames_per_second"])
        h, w = entry.input_size or (0, 0)
        print(f"| {entry.model} | {entry.file} | {w}×{h} | {rates[0]:.1f} | {rates[1]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
