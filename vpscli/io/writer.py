"""H.264 MP4 writer that browsers, PowerPoint and PACS viewers play.

OpenCV's wheels cannot encode H.264, so frames are piped to ffmpeg (imageio-ffmpeg's
binary) as raw RGB. Settings: libx264 (openh264 if that is all there is), yuv420p,
``+faststart``, the source's exact (rational) frame rate, one output frame per input
frame, no audio. yuv420p needs even sizes: odd widths/heights are padded by one black
column/row at the right/bottom, never rescaled. Output goes to a temporary file that is
renamed on success, so an interrupted write never leaves a half-written ``.mp4``.
"""
from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from vpscli.errors import OutputError, UsageError
from vpscli.io.ffmpeg import ffmpeg_exe, h264_encoders


class VideoWriter:
    """Write RGB frames to an H.264 MP4.

    Args:
        path: output ``.mp4``.
        fps: frame rate (a ``Fraction`` keeps 30000/1001 exact).
        size: ``(width, height)`` of the frames to come.
        crf: libx264 quality (lower is better; 18 is visually lossless for overlays).
        preset: libx264 speed/size trade-off.

    Use as a context manager; :attr:`frames_written` counts frames, :attr:`padded` says
    whether an odd size was padded.
    """

    def __init__(self, path: str | Path, fps: float | Fraction, size: tuple[int, int], crf: int = 18,
                 preset: str = "medium"):
        self.path = Path(path)
        self.width, self.height = int(size[0]), int(size[1])
        if self.width < 1 or self.height < 1:
            raise UsageError(f"cannot write a {self.width}x{self.height} video", path=self.path)
        self.fps = Fraction(fps).limit_denominator(100000) if not isinstance(fps, Fraction) else fps
        if self.fps <= 0:
            raise UsageError(f"frame rate must be positive, got {float(self.fps)}", path=self.path)
        self.padded = (self.width % 2, self.height % 2) != (0, 0)
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        encoders = h264_encoders()
        if not encoders:
            raise OutputError(
                "this ffmpeg has no H.264 encoder", path=ffmpeg_exe(),
                fix="install imageio-ffmpeg's wheel or set IMAGEIO_FFMPEG_EXE to an ffmpeg with libx264",
            )
        self.encoder = encoders[0]
        quality = ["-crf", str(crf), "-preset", preset] if self.encoder == "libx264" else ["-b:v", "8M"]
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{self.fps.numerator}/{self.fps.denominator}", "-i", "-",
            "-an", "-c:v", self.encoder, *quality, "-pix_fmt", "yuv420p",
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:0:0:color=black",
            "-fps_mode", "passthrough", "-movflags", "+faststart", str(self._tmp),
        ]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame of the writer's size."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {rgb.shape} {rgb.dtype}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb).tobytes())
        except (BrokenPipeError, OSError):
            self._fail()
        self.frames_written += 1

    def _fail(self) -> None:
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        self._proc.wait()
        self._tmp.unlink(missing_ok=True)
        if "No space left" in err:
            raise OutputError("disk full while writing the video", path=self.path,
                              fix="free disk space or choose another output folder") from None
        last = err.strip().splitlines()[-1] if err.strip() else f"ffmpeg exited with {self._proc.returncode}"
        raise OutputError(f"cannot write the video ({last})", path=self.path,
                          fix="check the output folder is writable and has space") from None

    def close(self) -> None:
        """Finish the file (moov atom first) and move it into place."""
        if self._proc.poll() is not None and self._proc.returncode != 0:
            self._fail()
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = self._proc.wait()
        if code != 0:
            self._fail()
        if self.frames_written == 0:
            self._tmp.unlink(missing_ok=True)
            raise OutputError("no frames were written", path=self.path, fix="the input had no frames")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop without producing the file (after an error upstream)."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.kill()
        self._proc.wait()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
