"""Video I/O throughput and memory: probe, decode (PyAV vs OpenCV) and H.264 encode (ffmpeg pipe).

Generates H.264 test videos with the bundled ffmpeg, then measures in one process:

1. streaming (first size): probe time, decode frames/s through ``VideoFileSource`` (PyAV),
   decode + libx264 encode frames/s, and peak RSS growth while streaming (which must not
   depend on the video's length: compare --frames 300 with --frames 1200);
2. the decoder choice: frames/s of OpenCV (``VideoCapture`` + BGR→RGB, the reader vps had
   before) and of PyAV (``VideoFileSource``: RGB, exact timestamps) on the same files, each
   size as stored and with 90° rotation metadata (both readers apply it), best of
   --rounds alternating runs (the machine may be shared).

    python benchmarks/bench_io.py [--frames 300] [--sizes 1920x1080,1280x720] [--rounds 5]
    python benchmarks/bench_io.py --frames 1200 --sizes 1920x1080 --rounds 0   # memory only
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from vpscli.io.ffmpeg import ffmpeg_exe
from vpscli.io.sources import open_source
from vpscli.io.writer import VideoWriter


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_video(path: Path, size: str, frames: int) -> Path:
    """H.264 (libx264 veryfast: B-frames, as cameras and exports have them), 30 fps."""
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=30",
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
    return path


def with_rotation(path: Path, degrees: int) -> Path:
    """A copy of ``path`` (same packets) with display-rotation metadata."""
    rotated = path.with_name(f"{path.stem}-rot{degrees}{path.suffix}")
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-display_rotation",
            str(degrees),
            "-i",
            str(path),
            "-c",
            "copy",
            str(rotated),
        ],
        check=True,
    )
    return rotated


def decode_opencv(path: Path) -> int:
    """What vps's reader did before PyAV: OpenCV decodes (and autorotates), then BGR → RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        _timestamp = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        _rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


def decode_pyav(path: Path) -> int:
    """vps's reader: ``VideoFileSource`` (PyAV, RGB, rotation applied, exact timestamps)."""
    return sum(1 for _ in open_source(path))


def measure(fn, path: Path) -> tuple[float, float, int]:
    """``(frames/s wall clock, CPU ms per frame over all threads, frames)``. CPU time is the
    steadier number on a shared machine: other processes slow the wall clock, not the work."""
    t, c = time.perf_counter(), time.process_time()
    n = fn(path)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return n / wall, 1000 * cpu / n, n


def streaming(src_path: Path, tmp: Path) -> None:
    rss0 = rss_mib()
    t = time.perf_counter()
    src = open_source(src_path)
    probe = src.probe()
    t_probe = time.perf_counter() - t
    t = time.perf_counter()
    n = sum(1 for _ in src)
    t_decode = time.perf_counter() - t
    rss_decode = rss_mib() - rss0
    t = time.perf_counter()
    with VideoWriter(tmp / "out.mp4", probe.fps, (probe.width, probe.height), preset="veryfast") as w:
        for frame in open_source(src_path):
            w.write(frame.image)
    t_roundtrip = time.perf_counter() - t
    rss_total = rss_mib() - rss0
    print(f"video: {probe.width}x{probe.height}, {n} frames (probe said {probe.frame_count})")
    print(f"{'stage':<28}{'seconds':>10}{'frames/s':>12}")
    print(f"{'probe (packet listing)':<28}{t_probe:>10.2f}{'':>12}")
    print(f"{'decode (PyAV)':<28}{t_decode:>10.2f}{n / t_decode:>12.1f}")
    print(f"{'decode + encode (libx264)':<28}{t_roundtrip:>10.2f}{n / t_roundtrip:>12.1f}")
    print(
        f"peak RSS growth: decode {rss_decode:.0f} MiB, decode+encode {rss_total:.0f} MiB "
        f"(one frame is {probe.width * probe.height * 3 / 2**20:.1f} MiB)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--sizes", default="1920x1080,1280x720")
    ap.add_argument("--rounds", type=int, default=5, help="0: streaming and memory only")
    args = ap.parse_args()
    sizes = args.sizes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = {}
        for size in sizes:
            videos[(size, 0)] = make_video(tmp / f"{size}.mp4", size, args.frames)
            videos[(size, 90)] = with_rotation(videos[(size, 0)], 90)
        # memory first: ru_maxrss is a peak, and the comparison below would raise it
        streaming(videos[(sizes[0], 0)], tmp)
        print()
        if args.rounds < 1:  # memory only (e.g. --frames 1200 to check that it stays flat)
            return
        best: dict[tuple, dict[str, float]] = {key: {"opencv": 0.0, "pyav": 0.0} for key in videos}
        cpu: dict[tuple, dict[str, list]] = {key: {"opencv": [], "pyav": []} for key in videos}
        for _ in range(args.rounds):
            for key, path in videos.items():
                for name, fn in (("opencv", decode_opencv), ("pyav", decode_pyav)):
                    fps, ms, n = measure(fn, path)
                    assert n == args.frames, f"{name} decoded {n} of {args.frames} frames of {path.name}"
                    best[key][name] = max(best[key][name], fps)
                    cpu[key][name].append(ms)
    print(
        f"decode to RGB ({args.frames} frames, H.264 libx264 veryfast): frames/s best of {args.rounds}, "
        "CPU ms/frame median"
    )
    print(
        f"{'video':<22}{'OpenCV f/s':>12}{'PyAV f/s':>10}{'ratio':>7}{'OpenCV ms':>11}{'PyAV ms':>9}{'ratio':>7}"
    )
    for key, fps in best.items():
        size, rot = key
        label = size + (f" rotated {rot}°" if rot else "")
        ms = {name: statistics.median(values) for name, values in cpu[key].items()}
        print(
            f"{label:<22}{fps['opencv']:>12.1f}{fps['pyav']:>10.1f}{fps['pyav'] / fps['opencv']:>7.2f}"
            f"{ms['opencv']:>11.2f}{ms['pyav']:>9.2f}{ms['opencv'] / ms['pyav']:>7.2f}"
        )
    print("ratio: PyAV / OpenCV speed (above 1: PyAV is faster)")


if __name__ == "__main__":
    main()
