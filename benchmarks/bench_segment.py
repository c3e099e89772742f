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

Targets (issue 5): end to end ≥ 0.7× model alone on the CPU; RSS within 10 % between lengths.
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

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25",
                    "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    str(path)], check=True)


def worker(model: str, video: str, device: str, precision: str, out: str, model_alone_steps: int) -> dict:
    import torch

    from vpscli.engine import Segmenter, SegmentOptions, segment_video
    from vpscli.io.sources import open_source
    from vpscli.models import build_model
    from vpscli.train.calibration import calibrate_batchnorm

    # untrained weights with calibrated BatchNorm: a trained model's output scale, so masks, PNGs and
    # overlays cost what they cost with real weights (a raw random PNS net marks all or nothing)
    from vpscli.engine.device import model_cpu_threads, set_cpu_threads

    if device == "cpu":
        set_cpu_threads(model_cpu_threads())  # what `vps segment` does on the CPU
    seg = Segmenter(calibrate_batchnorm(build_model(model)), device=device, precision=precision)
    spec = seg.spec
    h, w = spec.input_size
    clip = torch.rand(1, spec.clip_length, 3, h, w, device=seg.placement.device)
    anchor = clip[:, 0] if spec.needs_anchor else None
    state = seg.model.init_state()
    model_alone_steps = model_alone_steps or -(-10 // spec.clip_length)
    with torch.inference_mode(), seg.placement.autocast():
        seg.model(clip, state, anchor=anchor)  # warm-up (and PNS+ anchor encoding)
        t0 = time.perf_counter()
        for _ in range(model_alone_steps):
            seg.model(clip, state, anchor=anchor)
        if seg.placement.device.type == "cuda":
            torch.cuda.synchronize()
        alone = model_alone_steps * spec.clip_length / (time.perf_counter() - t0)
    samples = {}
    n_frames = open_source(video).probe().frame_count

    def sample_rss(result):
        if result.index in (n_frames // 3, n_frames - 1):
            with open("/proc/self/statm") as f:
                samples[result.index] = int(f.read().split()[1]) * resource.getpagesize() / 2**20

    rep = segment_video(seg, open_source(video), SegmentOptions(out_root=Path(out), overwrite=True),
                        on_frame=sample_rss)
    run = json.loads((Path(out) / Path(video).stem / "run.json").read_text())
    return {"model": model, "precision": seg.placement.precision, "frames": rep.frames, "model_alone_fps": alone,
            "end_to_end_fps": rep.frames / rep.seconds, "stages": run["timings_seconds"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_warm_mib": samples.get(n_frames // 3), "rss_end_mib": samples.get(n_frames - 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="pns-net,pns-plus,cffm,aen-pns-plus,aen-cffm")
    ap.add_argument("--frames", type=int, default=8, help="short clip length (the long one is 10×)")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=0, help="model-alone timed steps (default: ≥ 10 frames)")
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker[:2], args.device, args.precision, args.worker[2], args.steps)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        short, long = Path(tmp) / "short.mp4", Path(tmp) / "long.mp4"
        make_video(short, args.frames, args.size)
        make_video(long, args.frames * 10, args.size)
        for model in args.models.split(","):
            result = {}
            for label, video in (("short", short), ("long", long)):
                proc = subprocess.run([sys.executable, __file__, "--worker", model, str(video), str(Path(tmp) / "out"),
                                       "--device", args.device, "--precision", args.precision,
                                       "--steps", str(args.steps)], capture_output=True, text=True, check=True)
                result[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(result)
            r = result["long"]
            print(f"{model}: done ({r['frames']} frames, {r['end_to_end_fps']:.3f} frames/s)", file=sys.stderr)
    print(f"\nvps segment on {args.size} H.264, device {args.device}, clips of {args.frames} and {args.frames * 10} "
          "frames, untrained calibrated weights\n")
    head = (f"{'model':<14}{'prec':>6}{'alone f/s':>11}{'e2e f/s':>10}{'e2e/alone':>11}{'decode':>8}{'model':>8}"
            f"{'upsamp':>8}{'png':>7}{'overlay':>8}{'RSS short':>11}{'RSS long':>10}{'ratio':>7}{'warm→end':>16}")
    print(head)
    print("-" * len(head))
    for res in rows:
        s, lg = res["short"], res["long"]
        st = lg["stages"]
        print(f"{lg['model']:<14}{lg['precision']:>6}{lg['model_alone_fps']:>11.3f}{lg['end_to_end_fps']:>10.3f}"
              f"{lg['end_to_end_fps'] / lg['model_alone_fps']:>11.2f}{st.get('decode', 0):>8.1f}{st.get('model', 0):>8.1f}"
              f"{st.get('upsample', 0):>8.1f}{st.get('png', 0):>7.1f}{st.get('overlay', 0):>8.1f}"
              f"{s['peak_rss_mib']:>10.0f}M{lg['peak_rss_mib']:>9.0f}M{lg['peak_rss_mib'] / s['peak_rss_mib']:>7.2f}"
              f"{lg['rss_warm_mib']:>8.0f}→{lg['rss_end_mib']:.0f}M")
    print("\nstage columns: seconds over the long clip (decode/upsample/png/overlay run beside the model, in threads);"
          "\nwarm→end: RSS of the long run after a third of its frames and at its last frame")


if __name__ == "__main__":
    main()
