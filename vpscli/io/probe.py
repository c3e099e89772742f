"""What a video is before decoding it: size, fps, frame count, duration, rotation, VFR.

Header fields lie (frame counts after re-muxing, fps of variable-frame-rate files), so the
probe also lists the video packets with ffmpeg (demuxing only, no decoding): their count
is the frame count and their presentation timestamps tell constant from variable frame
rate. The decoded count stays the final truth; readers report when decoding stops early.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vpscli.errors import InputError
from vpscli.io.ffmpeg import run_ffmpeg

#: relative spread of frame durations above which a video counts as variable frame rate
VFR_TOLERANCE = 0.02


@dataclass(frozen=True)
class VideoProbe:
    """Properties of a frame source.

    Attributes:
        width, height: displayed size (after rotation metadata is applied).
        fps: average frame rate, exact where packet timestamps allow (e.g. 30000/1001).
        frame_count: frames in the stream (packet count; header count if packets cannot
            be listed; file count for frame folders).
        header_frame_count: what the container header claims (``None`` if unknown).
        duration: seconds.
        rotation: display rotation metadata in degrees counter-clockwise (0, 90, 180, 270).
        vfr: variable frame rate detected from packet timestamps.
        codec, pix_fmt: stream codec and pixel format (``"png"``/``"rgb24"`` style names
            for frame folders).
        stream_error: the first error ffmpeg met while listing packets (a truncated or
            damaged file), else ``None``.
    """

    path: str
    kind: str  # "video" or "frames"
    width: int
    height: int
    fps: Fraction
    frame_count: int
    header_frame_count: int | None
    duration: float
    rotation: int
    vfr: bool
    codec: str
    pix_fmt: str
    stream_error: str | None = None

    @property
    def expected_frames(self) -> int:
        """Frames a complete file would decode to: when the packet listing hit an error, the
        container's own index (if larger) says how many frames the file should have."""
        if self.stream_error and self.header_frame_count:
            return max(self.frame_count, self.header_frame_count)
        return self.frame_count

    def to_json(self) -> dict:
        d = asdict(self)
        d["fps"] = float(self.fps)
        d["fps_rational"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d


_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<codec>\w+)[^,]*, (?P<pixfmt>[\w]+)")
_SIZE_RE = re.compile(r", (\d{2,5})x(\d{2,5})[ ,]")
_FPS_RE = re.compile(r", ([\d.]+k?) fps")
_ROT_RE = re.compile(r"rotation of (-?[\d.]+) degrees")
_DUR_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def _parse_header(path: Path, text: str) -> dict:
    video_lines = [ln for ln in text.splitlines() if "Video:" in ln and "Stream #" in ln]
    if not video_lines:
        # ffmpeg -i without an output always ends with a complaint about that; skip it
        reasons = [ln.strip() for ln in text.splitlines()
                   if ln.strip() and "output file" not in ln and not ln.startswith(("Input #", "  "))]
        reason = reasons[-1] if reasons else "no video stream found"
        raise InputError(
            f"not a readable video ({reason})",
            path=path,
            fix="check that the file is a complete video (mp4, avi, mkv, mov, mpg) or pass a frame folder",
        )
    line = video_lines[0]
    m = _STREAM_RE.search(line)
    size = _SIZE_RE.search(line)
    fps = _FPS_RE.search(line)
    rot = _ROT_RE.search(text)
    dur = _DUR_RE.search(text)
    fps_val = None
    if fps:
        s = fps.group(1)
        fps_val = float(s[:-1]) * 1000 if s.endswith("k") else float(s)
    return {
        "codec": m.group("codec") if m else "unknown",
        "pix_fmt": m.group("pixfmt") if m else "unknown",
        "coded_size": (int(size.group(1)), int(size.group(2))) if size else None,
        "fps": fps_val,
        "rotation": int(round(float(rot.group(1)))) % 360 if rot else 0,
        "duration": int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None,
    }


NOPTS = -(2**63)


def packet_timestamps(path: str | Path) -> tuple[int, np.ndarray, Fraction, str | None] | None:
    """List the video packets without decoding.

    Returns the packet count, the valid presentation timestamps in display order (in
    ticks; packets without one are counted but skipped), the time base, and the first
    error ffmpeg reported while demuxing (``None`` if clean); ``None`` when ffmpeg cannot
    list packets at all.
    """
    proc = run_ffmpeg(["-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"])
    errors = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
    first_error = errors[0] if errors else None
    tb = None
    count = 0
    pts: list[int] = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("#tb 0:"):
            num, den = line.split(":", 1)[1].strip().split("/")
            tb = Fraction(int(num), int(den))
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            if len(fields) >= 3 and fields[0] == "0":
                count += 1
                try:
                    value = int(fields[2])
                except ValueError:
                    continue
                if value != NOPTS:
                    pts.append(value)
    if tb is None or count == 0:
        return None
    return count, np.sort(np.asarray(pts, dtype=np.int64)), tb, first_error


def probe_video(path: str | Path) -> VideoProbe:
    """Probe a video file. Raises :class:`InputError` for missing or unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, fix="check the path")
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)", path=path, fix="the copy or recording failed; get the video again")
    proc = run_ffmpeg(["-i", str(path)])
    text = proc.stderr.decode(errors="replace")
    header = _parse_header(path, text)
    if header["coded_size"] is None:
        raise InputError("video stream has no frame size", path=path, fix="the file is damaged; re-export it")
    w, h = header["coded_size"]
    if header["rotation"] in (90, 270):
        w, h = h, w

    header_count = None
    stream_error = None
    listed = packet_timestamps(path)
    if listed is not None:
        n, pts, tb, stream_error = listed
        steps = np.diff(pts)
        if len(pts) >= 2 and pts[-1] > pts[0]:
            fps = Fraction(len(pts) - 1, 1) / (Fraction(int(pts[-1]) - int(pts[0]), 1) * tb)
            median = float(np.median(steps))
            vfr = bool(median > 0 and (steps.max() - steps.min()) / median > VFR_TOLERANCE)
            duration = float(n / fps)
        else:
            fps = Fraction(header["fps"] or 25).limit_denominator(1001)
            vfr, duration = False, n / float(fps)
    else:
        n = 0
        fps = Fraction(header["fps"] or 25).limit_denominator(1001)
        vfr, duration = False, header["duration"] or 0.0

    import cv2  # the header count as OpenCV reports it, for the record

    cap = cv2.VideoCapture(str(path))
    if cap.isOpened():
        header_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    cap.release()
    if n == 0:
        n = header_count or 0
    if n == 0:
        raise InputError("video has no frames", path=path, fix="the file is empty or damaged; re-export it")
    return VideoProbe(
        path=str(path),
        kind="video",
        width=w,
        height=h,
        fps=fps,
        frame_count=n,
        header_frame_count=header_count,
        duration=duration,
        rotation=header["rotation"],
        vfr=vfr,
        codec=header["codec"],
        pix_fmt=header["pix_fmt"],
        stream_error=stream_error,
    )
