"""Video I/O throughput and memory: decode (OpenCV) and H.264 encode (ffmpeg pipe).

Generates a test video with the bundled ffmpeg (default 1080p, 600 frames), then measures in
one process: probe time, decode frames/s, encode frames/s, and peak RSS growth while streaming
(which must not depend on the video's length: compare --frames 300 with --frames 1200).

    python benchmarks/bench_io.py [--frames 600] [--size 1920x1080]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from vpscli.io.ffmpeg import ffmpeg_exe
from vpscli.io.sources import open_source
from vpscli.io.writer import VideoWriter


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src_path = Path(tmp) / "src.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={args.size}:rate=30", "-frames:v", str(args.frames), "-c:v", "libx264",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src_path)], check=True)
        rss0 = rss_mib()
        t = time.perf_counter()
        src = open_source(src_path)
        probe = src.probe()
        t_probe = time.perf_counter() - t
        t = time.perf_counter()
        n = 0
        for _ in src:
            n += 1
        t_decode = time.perf_counter() - t
        rss_decode = rss_mib() - rss0
        out = Path(tmp) / "out.mp4"
        t = time.perf_counter()
        with VideoWriter(out, probe.fps, (probe.width, probe.height), preset="veryfast") as w:
            for frame in open_source(src_path):
                w.write(frame.image)
        t_roundtrip = time.perf_counter() - t
        rss_total = rss_mib() - rss0
    print(f"video: {probe.width}x{probe.height}, {n} frames (probe said {probe.frame_count})")
    print(f"{'stage':<28}{'seconds':>10}{'frames/s':>12}")
    print(f"{'probe (packet listing)':<28}{t_probe:>10.2f}{'':>12}")
    print(f"{'decode (OpenCV)':<28}{t_decode:>10.2f}{n / t_decode:>12.1f}")
    print(f"{'decode + encode (libx264)':<28}{t_roundtrip:>10.2f}{n / t_roundtrip:>12.1f}")
    print(f"peak RSS growth: decode {rss_decode:.0f} MiB, decode+encode {rss_total:.0f} MiB "
          f"(one frame is {probe.width * probe.height * 3 / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
