"""The inference backends against torch on the bundled weights: the same answers, the validation figures of
each precision, and `vps segment`'s speed end to end.

    python benchmarks/bench_backends.py agreement [--models pns-net,pns-plus,aen-cffm]
    python benchmarks/bench_backends.py precision [--models pns-net]
    python benchmarks/bench_backends.py speed --size 1920x1080 --frames 250 [--no-overlay] [--models pns-net]
        [--precisions fp32,bf16,int8] [--clip testsrc|polyp]

- ``agreement``: the demo clip (``vps synth``, seed 7000, 48 frames) and the CVC-ClinicDB valid clips, each
  bundled model on torch, OpenVINO and ONNX Runtime at fp32: the largest difference of the 8-bit
  probability maps (levels of 1/255), the mask pixels that differ from torch's and how many of those have a
  probability within one level of the threshold.
- ``precision``: validation as ``vps train`` scores it (CVC-ClinicDB valid; the held-out PolypGen negatives
  seq2_neg and seq6_neg for the clean share) for torch fp32, OpenVINO fp32, bf16 and int8 (calibrated on
  the CVC-ClinicDB train clips' first 300 frames), with the seconds each validation took.
- ``speed``: ``vps segment`` as a user runs it (a synthetic H.264 clip: ffmpeg's testsrc2, which the model
  finds polyp-free, or ``--clip polyp``, ``vps synth``'s clip with a polyp in every frame; the model's cache
  already warm, int8's too: its calibration pass over 300 frames runs in the untimed first run), each
  backend in turn in one run: frames/s with start-up and without it (``run.json``), and the run's stage
  seconds.

Data: ``$VPS_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("VPS_DATA", "../shared/data"))
BACKENDS = ("torch", "openvino", "onnxruntime")


def _demo(tmp: Path) -> Path:
    subprocess.run(
        [
            "vps",
            "synth",
            str(tmp / "demo"),
            "--frames",
            "48",
            "--seed",
            "7000",
            "--name",
            "demo-clip",
            "--quiet",
        ],
        check=True,
    )
    return tmp / "demo" / "demo-clip.mp4"


def agreement(models: list[str]) -> None:
    from vpscli.engine import Segmenter
    from vpscli.io.sources import discover_sources, open_source

    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "demo clip": [open_source(_demo(Path(tmp)))],
            "CVC-ClinicDB valid": discover_sources([str(DATA / "cvc-clinicdb" / "valid")]),
        }
        print(
            f"{'model':<10}{'data':<20}{'backend':<13}{'frames':>7}{'max Δ levels':>14}{'mask px ≠':>11}"
            f"{'of which near thr':>19}{'pixels':>13}"
        )
        for model in models:
            # fp32 on both sides: the promise is torch's fp32 answers; ``auto`` may pick bf16 on either (torch:
            # a CPU with AMX; the compiled backends: the model card), measured by ``precision``
            ref = Segmenter(model, device="cpu", backend="torch", precision="fp32")
            for backend in BACKENDS[1:]:
                seg = Segmenter(model, device="cpu", backend=backend, precision="fp32")
                for label, sources in sets.items():
                    frames = worst = differ = near = pixels = 0
                    for source in sources:
                        for a, b in zip(ref.run(source), seg.run(source)):
                            pa, pb = a.prob.astype(int), b.prob.astype(int)
                            worst = max(worst, int(np.abs(pa - pb).max()))
                            diff = a.mask != b.mask
                            differ += int(diff.sum())
                            near += int((diff & (np.abs(pa - ref.threshold * 255) <= 1.5)).sum())
                            pixels += pa.size
                            frames += 1
                    print(
                        f"{model:<10}{label:<20}{backend:<13}{frames:>7}{worst:>14}{differ:>11}{near:>19}"
                        f"{pixels:>13,}"
                    )


def precision(models: list[str]) -> None:
    import torch

    from vpscli.engine import Segmenter
    from vpscli.train.sources import discover_source
    from vpscli.train.validate import validate

    split = Path("runs/split/neg-val/Frame")
    if not split.is_dir():
        subprocess.run(["bash", "-c", "source benchmarks/neg_split.sh"], check=True)
    sources = [discover_source(DATA / "cvc-clinicdb" / "valid"), discover_source(split)]
    calibration = DATA / "cvc-clinicdb" / "train"
    configs = [("torch", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")]
    print(
        f"{'model':<10}{'backend':<13}{'precision':<10}{'maxDice':>9}{'Smeasure':>10}{'meanDice':>10}"
        f"{'neg_clean':>10}{'seconds':>9}"
    )
    for model in models:
        for backend, prec in configs:
            calib = calibration if prec == "int8" else None
            seg = Segmenter(model, device="cpu", backend=backend, precision=prec, calibration=calib)
            t0 = time.perf_counter()
            m = validate(seg.loaded.net, sources, torch.device("cpu"), segmenter=seg).metrics
            sec = time.perf_counter() - t0
            print(
                f"{model:<10}{backend:<13}{prec:<10}{m['maxDice']:>9.4f}{m['Smeasure']:>10.4f}"
                f"{m['meanDice']:>10.4f}{m['neg_clean']:>10.4f}{sec:>9.1f}",
                flush=True,
            )


def speed(
    models: list[str], size: str, frames: int, overlay: bool, precisions: list[str], clip: str = "testsrc"
) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_segment import make_video

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        if clip == "polyp":  # a polyp in every frame: the upsampling, mask PNGs and overlay at their dearest
            synth = ["vps", "synth", tmp, "--frames", str(frames), "--size", size, "--seed", "7000"]
            subprocess.run(synth + ["--name", "clip", "--quiet"], check=True, capture_output=True)
        else:
            make_video(video, frames, size)
        what = "masks + overlay" if overlay else "masks only"
        print(
            f"vps segment, {frames} frames of {size} H.264 ({clip}), {what}, start-up included, model cached\n"
        )
        print(
            f"{'model':<10}{'backend':<18}{'wall s':>8}{'frames/s':>10}{'run f/s':>10}   stages (s, run.json)"
        )
        runs = [("torch", "fp32"), *(("openvino", p) for p in precisions), ("onnxruntime", "fp32")]
        for model in models:
            for backend, prec in runs:
                out = Path(tmp) / f"{backend}-{prec}"
                cmd = ["vps", "segment", str(video), "-o", str(out), "--overwrite", "-q", "--model", model]
                cmd += ["--backend", backend, "--precision", prec] + ([] if overlay else ["--no-overlay"])
                if prec == "int8":
                    cmd += ["--calibration", str(DATA / "cvc-clinicdb" / "train")]
                subprocess.run(cmd, check=True, capture_output=True)  # converts (once) and warms the cache
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                wall = time.perf_counter() - t0
                record = json.loads((out / "clip" / "run.json").read_text())
                stages = ", ".join(f"{k} {v:.2f}" for k, v in record["timings_seconds"].items())
                label = f"{backend} {prec}"
                own = record["frames_per_second"]  # start-up excluded
                print(
                    f"{model:<10}{label:<18}{wall:>8.2f}{frames / wall:>10.1f}{own:>10.1f}   {stages}",
                    flush=True,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["agreement", "precision", "speed"])
    ap.add_argument("--models", default=None)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--no-overlay", action="store_true")
    ap.add_argument(
        "--clip",
        choices=["testsrc", "polyp"],
        default="testsrc",
        help="speed: ffmpeg's testsrc2, or vps synth",
    )
    ap.add_argument("--precisions", default="fp32", help="speed: OpenVINO's precisions (fp32,bf16,int8)")
    args = ap.parse_args()
    if args.what == "agreement":
        agreement((args.models or "pns-net,pns-plus,aen-cffm").split(","))
    elif args.what == "precision":
        precision((args.models or "pns-net").split(","))
    else:
        speed(
            (args.models or "pns-net").split(","),
            args.size,
            args.frames,
            not args.no_overlay,
            args.precisions.split(","),
            args.clip,
        )


if __name__ == "__main__":
    main()
