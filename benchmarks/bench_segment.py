"""`vps segment` speed and memory, per model, on this machine.

For each model (untrained weights with calibrated BatchNorm — a trained model's output scale):

- model alone: frames/s of forward passes on clip-shaped tensors already on the device;
- end to end: frames/s of ``segment_video`` on an H.264 video (decode, resize, model,
  upsampling, mask PNGs, overlay MP4), split by stage;
- peak RSS of a short clip and of a 10× longer one, each in a fresh process, and the RSS of the
  long run sampled once the pipeline is warm (after a third of the frames) and at its end:
  the queues and PyTorch's allocator fill during the first frames, so "steady growth" is the
  honest measure of whether memory depends on the video's length.

    python benchmarks/bench_segment.py [--models pns-net,pns-plus] [--frames 8] [--size 1280x720]
                                       [--device cpu] [--precision auto]

    python benchmarks/bench_segment.py --model-free --size 1920x1080 --frames 30   # the pipeline alone

    python benchmarks/bench_segment.py --models pns-net --bundled --backend torch,openvino,onnxruntime \
        --size 1920x1080 --frames 25                  # the backends side by side, bundled weights

``--backend`` takes a comma-separated list: every model runs on each backend in the same run (the
models' graphs are converted before the timing starts, as a second ``vps segment`` finds them cached).
``--bundled`` runs the bundled weights (at their input size) instead of untrained ones.

``--model-free`` replaces each model by a zero-cost stand-in with its windowing
(:class:`vpscli.models.stand_in.StandInModel`), so what is left is the pipeline's own cost:
decoding, resizing, post-processing, PNGs and the overlay, on any machine.

Targets: end to end ≥ 0.7× model alone on the CPU and on a GPU; RSS within 10 % between lengths;
on a 2-core CPU, ``--model-free`` at 1080p
≥ 2× the pipeline before it (measured 12.1 → see the README).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_video(path: Path, frames: int, size: str) -> None:
    from vpscli.io.ffmpeg import ffmpeg_exe

    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25",
            "-frames:v",
            str(frames),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def worker(
    model: str,
    video: str,
    device: str,
    precision: str,
    out: str,
    model_alone_steps: int,
    model_free: bool = False,
    compile_mode: str | None = None,
    jobs: int = 1,
    backend: str = "torch",
    bundled: bool = False,
    overlay: bool = True,
) -> dict:
    import torch

    from vpscli.engine import Segmenter, SegmentOptions, segment_video

    # untrained weights with calibrated BatchNorm: a trained model's output scale, so masks, PNGs and
    # overlays cost what they cost with real weights (a raw random PNS net marks all or nothing)
    from vpscli.engine.device import model_cpu_threads, set_cpu_threads
    from vpscli.io.sources import open_source
    from vpscli.models import build_model
    from vpscli.train.calibration import calibrate_batchnorm

    if device == "cpu":  # what `vps segment` does on the CPU
        set_cpu_threads(model_cpu_threads(), model_cpu_threads(None, backend))
    if model_free:  # the pipeline alone: a stand-in with the model's windowing, at no cost
        from vpscli.models.stand_in import StandInModel

        net = StandInModel.like(model)
    elif bundled:
        net = model  # the bundled weights, loaded by the segmenter
    else:
        net = calibrate_batchnorm(build_model(model))
    seg = Segmenter(net, device=device, precision=precision, compile_mode=compile_mode, backend=backend)
    spec = seg.spec
    h, w = spec.input_size
    clip = torch.rand(1, spec.clip_length, 3, h, w, device=seg.placement.device)
    anchor = clip[:, 0] if spec.needs_anchor else None
    state = seg.model.init_state()
    model_alone_steps = model_alone_steps or -(-10 // spec.clip_length)
    with torch.inference_mode(), seg.placement.autocast():
        for _ in range(3 if compile_mode else 1):  # warm-up (PNS+ anchor encoding; compiling, CUDA graphs)
            seg._forward(clip, state, anchor=anchor)
        t0 = time.perf_counter()
        for _ in range(model_alone_steps):
            seg._forward(clip, state, anchor=anchor)
        if seg.placement.device.type == "cuda":
            torch.cuda.synchronize()
        alone = model_alone_steps * spec.clip_length / (time.perf_counter() - t0)
    samples = {}
    n_frames = open_source(video).probe().frame_count

    def sample_rss(result):
        if result.index in (n_frames // 3, n_frames - 1):
            with open("/proc/self/statm") as f:
                samples[result.index] = int(f.read().split()[1]) * resource.getpagesize() / 2**20

    if device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    if jobs > 1:  # `vps segment --jobs N` over N copies of the video: aggregate frames/s
        from vpscli.engine import segment_many

        copies = Path(out) / "inputs"
        copies.mkdir(parents=True, exist_ok=True)
        for k in range(jobs):
            (copies / f"v{k}.mp4").unlink(missing_ok=True)
            (copies / f"v{k}.mp4").symlink_to(Path(video).absolute())
        t0 = time.perf_counter()
        reports, failures = segment_many(
            seg,
            [open_source(copies / f"v{k}.mp4") for k in range(jobs)],
            SegmentOptions(out_root=Path(out) / "jobs", overwrite=True, overlay=overlay),
            jobs=jobs,
        )
        wall = time.perf_counter() - t0
        assert not failures, failures
        frames = sum(r.frames for r in reports)
        stages: dict[str, float] = {}
        for r in reports:
            for k, v in json.loads((r.out_dir / "run.json").read_text())["timings_seconds"].items():
                stages[k] = stages.get(k, 0.0) + v
        stages["total"] = wall
        rep_frames, rep_seconds = frames, wall
    else:
        rep = segment_video(
            seg,
            open_source(video),
            SegmentOptions(out_root=Path(out), overwrite=True, overlay=overlay),
            on_frame=sample_rss,
        )
        stages = json.loads((Path(out) / Path(video).stem / "run.json").read_text())["timings_seconds"]
        rep_frames, rep_seconds = rep.frames, rep.seconds
    from vpscli.engine.sinks import png_workers

    return {
        "model": model,
        "backend": seg.backend,
        "precision": seg.precision,
        "png_workers": png_workers(),
        "jobs": jobs,
        "compile_mode": compile_mode,
        "frames": rep_frames,
        "model_alone_fps": alone,
        "end_to_end_fps": rep_frames / rep_seconds,
        "stages": stages,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device != "cpu" else None,
        "rss_warm_mib": samples.get(n_frames // 3),
        "rss_end_mib": samples.get(n_frames - 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="pns-net,pns-plus,cffm,aen-pns-plus,aen-cffm")
    ap.add_argument("--frames", type=int, default=8, help="short clip length (the long one is 10×)")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=0, help="model-alone timed steps (default: ≥ 10 frames)")
    ap.add_argument(
        "--model-free",
        action="store_true",
        help="a zero-cost stand-in for each model: the pipeline's own throughput",
    )
    ap.add_argument(
        "--compile-mode", default=None, help="torch.compile mode (default, reduce-overhead, max-autotune)"
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="segment this many copies of the long clip at once (vps segment --jobs): aggregate frames/s",
    )
    ap.add_argument("--backend", default="torch", help="comma-separated: torch,openvino,onnxruntime")
    ap.add_argument("--bundled", action="store_true", help="the bundled weights instead of untrained ones")
    ap.add_argument("--no-overlay", action="store_true", help="masks only (no overlay video)")
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(
            json.dumps(
                worker(
                    *args.worker[:2],
                    args.device,
                    args.precision,
                    args.worker[2],
                    args.steps,
                    args.model_free,
                    args.compile_mode,
                    args.jobs,
                    args.backend,
                    args.bundled,
                    not args.no_overlay,
                )
            )
        )
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp) / "short.mp4", Path(tmp) / "long.mp4"
        make_video(short, args.frames, args.size)
        make_video(long, args.frames * 10, args.size)
        for model, backend in [(m, b) for m in args.models.split(",") for b in args.backend.split(",")]:
            result = {}
            for label, video in (("short", short), ("long", long)):
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        model,
                        str(video),
                        str(Path(tmp) / "out"),
                        "--device",
                        args.device,
                        "--precision",
                        args.precision,
                        "--steps",
                        str(args.steps),
                        "--jobs",
                        str(args.jobs if label == "long" else 1),
                        "--backend",
                        backend,
                    ]
                    + (["--model-free"] if args.model_free else [])
                    + (["--bundled"] if args.bundled else [])
                    + (["--no-overlay"] if args.no_overlay else [])
                    + (["--compile-mode", args.compile_mode] if args.compile_mode else []),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(result)
            r = result["long"]
            print(
                f"{model}: done ({r['frames']} frames, {r['end_to_end_fps']:.3f} frames/s)", file=sys.stderr
            )
    kind = (
        "zero-cost stand-in models (--model-free: the pipeline alone)"
        if args.model_free
        else ("bundled weights" if args.bundled else "untrained calibrated weights")
    )
    kind += "" if not args.no_overlay else "; masks only (no overlay)"
    if args.jobs > 1:
        kind += f"; the long run is {args.jobs} copies at once (--jobs {args.jobs}), frames/s summed"
    if args.compile_mode:
        kind += f"; torch.compile mode {args.compile_mode}"
    print(
        f"\nvps segment on {args.size} H.264, device {args.device}, clips of {args.frames} and {args.frames * 10} "
        f"frames, {kind}\n"
    )
    head = (
        f"{'model':<14}{'backend':>12}{'prec':>6}{'alone f/s':>11}{'e2e f/s':>10}{'e2e/alone':>11}{'model/wall':>12}{'decode':>8}"
        f"{'model':>8}{'upsamp':>8}{'png':>7}{'overlay':>8}  {'bottleneck':<12}{'RSS short':>10}{'RSS long':>10}"
        f"{'warm→end':>15}"
    )
    print(head)
    print("-" * len(head))
    for res in rows:
        s, lg = res["short"], res["long"]
        st = lg["stages"]
        print(
            f"{lg['model']:<14}{lg['backend']:>12}{lg['precision']:>6}{lg['model_alone_fps']:>11.1f}{lg['end_to_end_fps']:>10.2f}"
            f"{lg['end_to_end_fps'] / lg['model_alone_fps']:>11.3f}{st.get('model', 0) / st['total']:>12.2f}"
            f"{st.get('decode', 0):>8.2f}{st.get('model', 0):>8.2f}{st.get('upsample', 0):>8.2f}"
            f"{st.get('png', 0):>7.2f}{st.get('overlay', 0):>8.2f}  {bottleneck(st, lg['png_workers'], lg['jobs']):<12}"
            f"{s['peak_rss_mib']:>9.0f}M{lg['peak_rss_mib']:>9.0f}M"
            + (f"{lg['rss_warm_mib']:>8.0f}→{lg['rss_end_mib']:.0f}M" if lg["rss_warm_mib"] else f"{'-':>10}")
            + (
                f"   GPU peak {s['gpu_peak_mib']:.0f}→{lg['gpu_peak_mib']:.0f} MiB"
                if lg["gpu_peak_mib"]
                else ""
            )
        )
    print(
        "\nstage columns: seconds over the long clip, each stage's own time (decode+preprocess on the decoder thread;"
        "\nmodel on the model thread, upsample on the caller's; png on a pool; overlay drawing and feeding the encoder on its thread);"
        "\nmodel/wall: the share of the run the model computed (GPU utilisation on CUDA; with --jobs the videos'"
        "\nmodel seconds are summed, so overlapping streams can exceed 1); bottleneck: the busiest"
        "\nthread (the encoder process is not timed: it shows as overlay time when the overlay waits for it);"
        "\nwarm→end: RSS of the long run after a third of its frames and at its last frame"
    )


def bottleneck(stages: dict, png_workers: int, jobs: int = 1) -> str:
    """The thread with the most busy seconds: the stage that sets the pace (with ``jobs`` videos at once,
    each stage's seconds are summed over the videos: per thread, a ``jobs``-th of it)."""
    busy = {
        "decode": stages.get("decode", 0) + stages.get("preprocess", 0),
        "model": stages.get("model", 0),  # on the CPU the model has its own thread
        "upsample": stages.get("upsample", 0),
        "png": stages.get("png", 0) / max(png_workers, 1),
        "overlay": stages.get("overlay", 0),
    }
    name = max(busy, key=busy.get)
    return f"{name} {busy[name] / jobs / stages['total']:.0%}"


if __name__ == "__main__":
    main()
