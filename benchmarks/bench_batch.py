"""What Ray costs over one process: ``vps segment`` on 8 synthetic 48-frame clips, single-process vs a local
Ray instance, in one run; then the storage a video's outputs take (for the archive plan in the README).

Usage::

    python benchmarks/bench_batch.py [--clips 8] [--frames 48] [--size 320x224] [--rounds 1]
        [--storage-clip PATH] [--json]

Each round runs, one after another, as ``vps`` subprocesses (so each pays its own start-up, as a user does):

- ``single``: ``vps segment CLIPS -o A`` — one process, the model with vps's default threads (here 1, one
  core kept for decoding and writing);
- ``ray, 1 task at a time``: ``--ray local --cpus-per-video 2`` — Ray on this machine, each task holding both
  CPUs, so tasks run one after another with the same model threads as ``single``: the difference is Ray's
  own cost (starting the instance and its workers, loading the model once per worker, shipping tasks);
- ``ray, 2 tasks at once``: ``--ray local`` (1 CPU per video, the default) — what a user gets;
- ``ray, 1 task at a time, joining a running instance``: as the first Ray row, but joining an instance started
  before (``ray start --head``, as on a cluster), so starting and stopping Ray is not counted.

Overhead = wall time / single's − 1 (target ≤ 10 %); "videos' own s" sums each video's ``segment_video``
time from ``batch.json`` (wall time minus start-up, scheduling and shutdown, for one task at a time).
Outputs are checked equal to ``single``'s (masks and frames.csv, byte for byte) for the rows with the same
threads (one task at a time). The measured table is in the README ("What Ray costs").

Storage: the bundled model on ``--storage-clip`` (default: a 1920×1080 48-frame synthetic clip, and the
first CVC-ClinicDB valid clip when ``VPS_DATA`` holds it) with ``--save-prob``: bytes per frame of a mask
PNG and a probability PNG, and the overlay's bitrate. Opt-in: not part of the tests (about 5 minutes on a
2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vpscli.synth import SynthConfig, write_clip

#: the Ray instance of the "joining" rows: ``ray start --head`` before the row, ``ray stop`` after it (which stops
#: every Ray instance of this user on the machine: run the benchmark with no other Ray job here)
RAY_PORT = 6391
MODES = {
    "single": [],
    "ray, 1 task at a time": ["--ray", "local", "--cpus-per-video", "2"],
    "ray, 2 tasks at once": ["--ray", "local"],
    # auto: the instance this machine runs (RAY_ADDRESS / ray start), as on a cluster node
    "ray, 1 task at a time, joining a running instance": ["--ray", "auto", "--cpus-per-video", "2"],
}


def run_vps(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "vpscli", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"vps {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return time.perf_counter() - t0


def same_outputs(a: Path, b: Path) -> bool:
    for folder in sorted(p for p in a.iterdir() if p.is_dir()):
        other = b / folder.name
        if (folder / "frames.csv").read_bytes() != (other / "frames.csv").read_bytes():
            return False
        for png in (folder / "masks").iterdir():
            if png.read_bytes() != (other / "masks" / png.name).read_bytes():
                return False
    return True


def overhead(args, work: Path) -> list[dict]:
    width, height = (int(v) for v in args.size.split("x"))
    clips = []
    for i in range(args.clips):
        write_clip(
            work / "clips",
            SynthConfig(frames=args.frames, width=width, height=height, seed=7100 + i),
            "mp4",
            f"clip{i}",
        )
        clips.append(str(work / "clips" / f"clip{i}.mp4"))
    times: dict[str, list[float]] = {m: [] for m in MODES}
    video_s: dict[str, list[float]] = {m: [] for m in MODES}  # the videos' own seconds (batch.json), summed
    ray_cli = str(Path(sys.executable).parent / "ray")
    for r in range(args.rounds):
        for mode, extra in MODES.items():
            out = work / f"out-{r}-{list(MODES).index(mode)}"
            joining = "joining" in mode
            if joining:
                subprocess.run(
                    [
                        ray_cli,
                        "start",
                        "--head",
                        f"--port={RAY_PORT}",
                        "--num-cpus=2",
                        "--include-dashboard=false",
                    ],
                    check=True,
                    capture_output=True,
                )
            try:
                times[mode].append(run_vps(["segment", *clips, "-o", str(out), "-q", *extra]))
                video_s[mode].append(
                    sum(e["seconds"] for e in json.loads((out / "batch.json").read_text())["entries"])
                )
            finally:
                if joining:
                    subprocess.run([ray_cli, "stop"], capture_output=True)
            print(f"round {r + 1} {mode}: {times[mode][-1]:.1f} s", file=sys.stderr)
    frames = args.clips * args.frames
    single = min(times["single"])
    rows = []
    for i, mode in enumerate(MODES):
        best = min(times[mode])
        equal = (
            None
            if i in (0, 2)
            else all(same_outputs(work / f"out-{r}-0", work / f"out-{r}-{i}") for r in range(args.rounds))
        )
        rows.append(
            {
                "mode": mode,
                "wall_s": [round(t, 1) for t in times[mode]],
                "frames_per_s": round(frames / best, 2),
                "overhead": round(best / single - 1, 3),
                "outputs_equal_single": equal,
                "video_s": [round(t, 1) for t in video_s[mode]],
            }
        )
    return rows


def storage(clip: Path, work: Path) -> dict:
    out = work / f"storage-{clip.stem}"
    run_vps(["segment", str(clip), "-o", str(out), "-q", "--save-prob"])
    folder = next(p for p in out.iterdir() if p.is_dir())
    record = json.loads((folder / "run.json").read_text())
    n = record["frames"]
    masks = sum(p.stat().st_size for p in (folder / "masks").iterdir())
    probs = sum(p.stat().st_size for p in (folder / "probs").iterdir())
    seconds = n / float(record["probe"]["fps"])
    overlay = (folder / "overlay.mp4").stat().st_size
    return {
        "clip": str(clip),
        "size": f"{record['probe']['width']}x{record['probe']['height']}",
        "frames": n,
        "with_polyp": record["frames_with_polyp"],
        "mask_png_bytes_per_frame": round(masks / n),
        "prob_png_bytes_per_frame": round(probs / n),
        "overlay_mbit_per_s": round(overlay * 8 / seconds / 1e6, 2),
        "overlay_preset": record["overlay_preset"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", default="320x224")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--storage-clip", type=Path, action="append")
    ap.add_argument("--no-storage", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        rows = overhead(args, work)
        stores = []
        if not args.no_storage:
            clips = args.storage_clip
            if not clips:
                write_clip(
                    work / "hd", SynthConfig(frames=48, width=1920, height=1080, seed=7200), "mp4", "hd"
                )
                clips = [work / "hd" / "hd.mp4"]
                data = Path(os.environ.get("VPS_DATA", "")) / "cvc-clinicdb" / "valid" / "Frame"
                if os.environ.get("VPS_DATA") and data.is_dir():
                    clips.append(sorted(p for p in data.iterdir() if p.is_dir())[0])
            stores = [storage(Path(c), work) for c in clips]
        if args.json:
            print(json.dumps({"overhead": rows, "storage": stores}, indent=2))
            return
        print(
            f"| mode ({args.clips} clips × {args.frames} frames, {args.size}) | wall s | videos' own s (sum) | "
            "frames/s | overhead vs single | outputs = single |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            equal = {None: "-", True: "yes", False: "NO"}[r["outputs_equal_single"]]
            print(
                f"| {r['mode']} | {' / '.join(map(str, r['wall_s']))} | {' / '.join(map(str, r['video_s']))} | "
                f"{r['frames_per_s']} | {r['overhead'] * 100:+.1f} % | {equal} |"
            )
        for s in stores:
            print(
                f"\nstorage {s['clip']} ({s['size']}, {s['frames']} frames, {s['with_polyp']} with polyp): "
                f"mask PNG {s['mask_png_bytes_per_frame']} B/frame, prob PNG {s['prob_png_bytes_per_frame']} "
                f"B/frame, overlay {s['overlay_mbit_per_s']} Mbit/s ({s['overlay_preset']})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
