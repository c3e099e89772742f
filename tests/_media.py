"""Test media made on the fly with the bundled ffmpeg: exact, tiny, deterministic."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from vpscli.io.ffmpeg import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_testsrc(
    path: Path,
    seconds: float,
    rate: int,
    size: str = "160x120",
    codec: list[str] | None = None,
    extra: list[str] | None = None,
) -> Path:
    codec = codec if codec is not None else ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate={rate}",
        "-t",
        str(seconds),
        *codec,
        *(extra or []),
        str(path),
    )
    return path


def decode_with_ffmpeg(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame of ``path`` as ``(N, H, W, 3)`` RGB, decoded by ffmpeg itself (autorotate on)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def smooth_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """Smooth, distinct frames that H.264 reproduces closely: moving gradients."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        r = 128 + 100 * np.sin(xx / width * 3.1 + i * 0.3)
        g = 128 + 100 * np.cos(yy / height * 2.7 - i * 0.2)
        b = np.full_like(xx, 40 + 15 * i % 200)
        frames.append(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8))
    return frames


def make_truncated_clip(folder: Path, frames: int = 100, keep: float = 0.55) -> tuple[Path, Path]:
    """A constant 25 fps H.264 clip with B-frames in every GOP (index at the front,
    ``+faststart``) and a copy cut after ``keep`` of its bytes: ``(full, cut)``.

    One encoder thread and fixed B-frame placement make the bytes, and so the cut, the same
    on every machine. Cut there, the reordered frames leave holes among the last timestamps.
    """
    full, cut = folder / "full.mp4", folder / "cut.mp4"
    make_testsrc(
        full,
        frames / 25,
        25,
        extra=["-x264-params", "bframes=3:b-adapt=0:threads=1", "-movflags", "+faststart"],
    )
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    return full, cut
