"""The ffmpeg binary vps uses (imageio-ffmpeg's, or ``IMAGEIO_FFMPEG_EXE``) and what it can do.

PyAV (FFmpeg's libraries) probes and decodes; this ffmpeg program encodes H.264 (OpenCV's
wheels cannot), fed raw frames through a pipe.
"""

from __future__ import annotations

import functools
import re
import subprocess

from vpscli.errors import VpsError

#: H.264 encoders in order of preference (libx264 gives the best quality per bit).
H264_ENCODERS = ("libx264", "libopenh264")


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:  # no bundled binary for this platform and none on PATH
        raise VpsError(
            f"no ffmpeg binary found ({e})",
            fix="pip install imageio-ffmpeg, or set IMAGEIO_FFMPEG_EXE to an ffmpeg with libx264",
        ) from None


def run_ffmpeg(args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg with ``args`` (no banner), capturing output as bytes."""
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    out = run_ffmpeg(["-version"], timeout=10).stdout.decode(errors="replace")
    m = re.match(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else "unknown"


@functools.lru_cache(maxsize=1)
def h264_encoders() -> tuple[str, ...]:
    """The H.264 encoders of :data:`H264_ENCODERS` this ffmpeg has, best first."""
    out = run_ffmpeg(["-encoders"], timeout=10).stdout.decode(errors="replace")
    names = {line.split()[1] for line in out.splitlines() if len(line.split()) > 1 and line.startswith(" V")}
    return tuple(e for e in H264_ENCODERS if e in names)


def last_error_line(stderr: bytes) -> str:
    """The most informative line of ffmpeg's stderr (its last non-empty one)."""
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed without a message"
