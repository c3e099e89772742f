"""H.264 MP4 writer that browsers, PowerPoint and PACS viewers play.

OpenCV's wheels cannot encode H.264, so frames are piped to ffmpeg (imageio-ffmpeg's
binary). Settings: libx264 (openh264 if that is all there is), yuv420p, ``+faststart``, one
output frame per input frame, no audio. yuv420p needs even sizes: odd widths/heights are
padded by one black column/row at the right/bottom, never rescaled; the RGB → YUV 4:2:0 conversion
filters chroma bilinearly (half the CPU of swscale's default bicubic at 1080p). Output goes to a
temporary file that is renamed on success, so an interrupted write never leaves a
half-written ``.mp4``.

Timing, decided by the first :meth:`VideoWriter.write`:

- without timestamps (constant frame rate): raw frames on the pipe at the exact (rational) ``fps``,
  YUV 4:2:0 converted here when the size is even, else RGB;
- with a timestamp per frame (variable frame rate: overlays of VFR sources keep the
  source's timing): the raw RGB frames are muxed with their timestamps into NUT by PyAV on
  the pipe, and ffmpeg passes each timestamp through to the MP4 (90 kHz ticks, the MPEG
  clock, which holds 25, 30000/1001 and millisecond steps exactly). Timestamps count from
  the first frame's (the video starts at 0); one that does not increase is moved one tick
  after the previous frame, since a frame cannot be shown twice at once.
"""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from vpscli.errors import OutputError, UsageError
from vpscli.io.ffmpeg import ffmpeg_exe, h264_encoders

#: time base of timestamped output (seconds per tick)
TIMESTAMP_TIME_BASE = Fraction(1, 90000)


class VideoWriter:
    """Write RGB frames to an H.264 MP4.

    Example: ``with VideoWriter("out.mp4", 25, (640, 480)) as w: w.write(frame)  # (480, 640, 3) uint8 RGB``.

    Args:
        path: output ``.mp4``.
        fps: frame rate (a ``Fraction`` keeps 30000/1001 exact); with timestamps, the nominal
            rate (the last frame lasts ``1 / fps``).
        size: ``(width, height)`` of the frames to come.
        crf: libx264 quality (lower is better; 18 is visually lossless for overlays).
        preset: libx264 speed/size trade-off.
        threads: the encoder's threads (``None``: its own choice).

    Use as a context manager; :attr:`frames_written` counts frames, :attr:`padded` says
    whether an odd size was padded. Give every frame a timestamp, or none (module doc).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        size: tuple[int, int],
        crf: int = 18,
        preset: str = "medium",
        threads: int | None = None,
    ):
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
                "this ffmpeg has no H.264 encoder",
                path=ffmpeg_exe(),
                fix="install imageio-ffmpeg's wheel or set IMAGEIO_FFMPEG_EXE to an ffmpeg with libx264",
            )
        self.encoder = encoders[0]
        self._quality = ["-crf", str(crf), "-preset", preset] if self.encoder == "libx264" else ["-b:v", "8M"]
        #: the encoder's threads (``None``: its own choice, 1.5 per core for libx264)
        self.threads = threads
        #: ``True``/``False`` once the first frame said whether frames carry timestamps
        self.timestamped: bool | None = None
        self._yuv = False
        self._proc: subprocess.Popen | None = None
        self._nut: Any = None  # PyAV output container (timestamped mode; PyAV is imported when used)
        self._nut_stream: Any = None
        self._first_ticks: int | None = None
        self._last_ticks: int | None = None

    def _start(self, timestamped: bool) -> None:
        """Start ffmpeg for raw RGB at ``fps`` or, with timestamps, for NUT from PyAV."""
        # Even-sized constant-rate frames go on the pipe as YUV 4:2:0, converted by OpenCV (0.7 ms a frame
        # at 1080p): half the bytes of RGB, and ffmpeg's own conversion (7 of its 13.5 ms of CPU a frame
        # with libx264 ultrafast) is skipped. Both are BT.601 limited range.
        self._yuv = not timestamped and self.width % 2 == 0 and self.height % 2 == 0
        if timestamped:
            source = ["-f", "nut", "-i", "-", "-enc_time_base", "demux"]  # keep the 90 kHz ticks
        else:
            source = [
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p" if self._yuv else "rgb24",
                "-s",
                f"{self.width}x{self.height}",
                "-framerate",
                f"{self.fps.numerator}/{self.fps.denominator}",
                "-i",
                "-",
            ]
        cmd = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            *source,
            "-an",
            "-c:v",
            self.encoder,
            *self._quality,
            *([] if self.threads is None else ["-threads", str(int(self.threads))]),
            "-pix_fmt",
            "yuv420p",
            # RGB → YUV 4:2:0 with bilinear chroma filtering: swscale's default (bicubic) costs more than
            # libx264 superfast itself at 1080p and runs on one thread (measured: 68 → 33 ms of CPU per
            # frame for the conversion and the encoding together; benchmarks/bench_segment.py --model-free)
            "-sws_flags",
            "bilinear",
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2:0:0:color=black",
            "-fps_mode",
            "passthrough",
            "-movflags",
            "+faststart",
            str(self._tmp),
        ]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.timestamped = timestamped
        if timestamped:
            import av

            self._nut = av.open(self._proc.stdin, mode="w", format="nut")
            stream = self._nut.add_stream("rawvideo", rate=self.fps)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "rgb24"
            stream.time_base = stream.codec_context.time_base = TIMESTAMP_TIME_BASE
            self._nut_stream = stream

    def write(self, rgb: np.ndarray, timestamp: float | None = None) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame of the writer's size, shown at ``timestamp``
        seconds (give one with every frame or with none; module doc)."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {rgb.shape} {rgb.dtype}"
            )
        if self.timestamped is None:
            self._start(timestamp is not None)
        elif self.timestamped != (timestamp is not None):
            raise ValueError("give a timestamp with every frame or with none")
        import av

        try:
            if timestamp is not None:  # the same as self.timestamped (checked above)
                self._mux(rgb, timestamp)
            else:
                frame: np.ndarray = np.ascontiguousarray(rgb)
                if self._yuv:
                    import cv2

                    frame = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
                # the array's own buffer: a bytes copy would cost 2 ms a frame at 1080p on the overlay thread
                self._stdin().write(frame.data.cast("B"))
        except (OSError, av.error.FFmpegError):
            self._fail()
        self.frames_written += 1

    def _stdin(self) -> IO[bytes]:
        """The running ffmpeg's input pipe (the first frame starts ffmpeg)."""
        assert self._proc is not None and self._proc.stdin is not None
        return self._proc.stdin

    def _mux(self, rgb: np.ndarray, timestamp: float) -> None:
        import av

        ticks = round(Fraction(timestamp) / TIMESTAMP_TIME_BASE)
        if self._first_ticks is None:
            self._first_ticks = ticks
        ticks -= self._first_ticks
        if self._last_ticks is not None and ticks <= self._last_ticks:
            ticks = self._last_ticks + 1
        self._last_ticks = ticks
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = ticks, TIMESTAMP_TIME_BASE
        for packet in self._nut_stream.encode(frame):
            packet.duration = round(1 / (self.fps * TIMESTAMP_TIME_BASE))
            self._nut.mux(packet)

    def _close_nut(self) -> None:
        """Finish the NUT stream (trailer) on the pipe; errors surface from ffmpeg's side."""
        if self._nut is None:
            return
        nut, self._nut = self._nut, None
        for packet in self._nut_stream.encode(None):
            nut.mux(packet)
        nut.close()

    def _fail(self) -> None:
        try:
            self._close_nut()
        except Exception:  # the pipe is already broken: ffmpeg's stderr says why
            pass
        try:
            self._stdin().close()
        except OSError:
            pass
        assert self._proc is not None
        err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
        self._proc.wait()
        self._tmp.unlink(missing_ok=True)
        if "No space left" in err:
            raise OutputError(
                "disk full while writing the video",
                path=self.path,
                fix="free disk space or choose another output folder",
            ) from None
        last = err.strip().splitlines()[-1] if err.strip() else f"ffmpeg exited with {self._proc.returncode}"
        raise OutputError(
            f"cannot write the video ({last})",
            path=self.path,
            fix="check the output folder is writable and has space",
        ) from None

    def close(self) -> None:
        """Finish the file (moov atom first) and move it into place."""
        if self._proc is None:  # no frame came
            raise OutputError("no frames were written", path=self.path, fix="the input had no frames")
        import av

        if self._proc.poll() is not None and self._proc.returncode != 0:
            self._fail()
        try:
            self._close_nut()
        except (OSError, av.error.FFmpegError):
            self._fail()
        try:
            self._stdin().close()
        except (BrokenPipeError, OSError):
            pass
        code = self._proc.wait()
        if code != 0:
            self._fail()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop without producing the file (after an error upstream)."""
        if self._proc is None:
            return
        self._proc.kill()
        if self._nut is not None:  # its trailer goes to a dead pipe, and the temporary file goes anyway
            nut, self._nut = self._nut, None
            try:
                nut.close()
            except Exception:
                pass
        try:
            self._stdin().close()
        except OSError:
            pass
        self._proc.wait()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
