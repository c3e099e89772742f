"""What a video is before decoding it: size, fps, frame count, duration, rotation, VFR, damage.

Everything is read as values through PyAV (FFmpeg's own libraries): the container's
streams, every video packet (demuxing only, no decoding), their timestamps and time base,
the codec and pixel format, and the display-matrix rotation. Header fields lie (frame
counts after re-muxing, fps of variable-frame-rate files), so the packets decide; the
decoded count stays the final truth, and readers report when decoding stops early.

The rules, in order:

1. **Frame count** = video packets the demuxer delivers (packets flagged *discard*, which an
   edit list hides, are not counted). ``header_frame_count`` is what the container's index
   announces (MP4/MOV/AVI do; Matroska/WebM/MPEG do not: ``None``).
2. **Damage** (``stream_error``): demuxing stopped on an error, a packet came out cut short
   or flagged corrupt (a file truncated inside a packet), or the file holds fewer packets
   than its index announces (a truncated file whose index sits at the front, ``+faststart``).
3. **Timestamps** = the packets' presentation timestamps (decode timestamps where a
   container stores none), sorted into display order. In a damaged file the last *d* of
   them are set aside, *d* being the encoder's reordering depth measured on the packets
   (how many earlier-decoded frames are shown after a frame, at most; B-frames make it 1–3):
   a frame lost at the cut is shown before at most *d* frames that did arrive, so what is
   left has no holes. Without this, the holes a truncation leaves among reordered frames
   read as long frame durations: a variable, too low frame rate.
4. **Constant or variable**: constant when every timestamp lies within one time-base tick
   plus 2 % of a frame (:data:`VFR_TOLERANCE`) of the straight line through the first and the
   last one. Rounding to a coarse time base therefore never makes a file variable (29.97 fps
   in a millisecond time base steps 33 and 34 ms), while a file whose frame durations really
   change (a 10 fps part then a 25 fps part) is far off that line.
5. **fps** = (timestamps − 1) / (last − first), exact in the time base. When the rate the
   container declares lies within that measurement's rounding (one tick over the span) it
   is reported instead, being the exact rational the timestamps were rounded from
   (30000/1001, not 89/2.970 s). With fewer than two timestamps: the declared rate, else 25.
6. **Duration** = frame count / fps.
7. **Rotation**: the display-matrix side data, read from the first decoded frame (PyAV gives
   a stream's side data to its frames only; one frame is decoded for it), as degrees
   counter-clockwise. Angles more than 1° away from a multiple of 90 are not applied (0),
   as ffmpeg's own autorotation does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vpscli.errors import InputError

#: a timestamp this far off the constant-rate line (as a share of one frame, on top of one
#: time-base tick of rounding) makes a video variable frame rate
VFR_TOLERANCE = 0.02
#: frame rate assumed when a video declares none and has fewer than two timestamps
FALLBACK_FPS = Fraction(25)
#: packets fed to the decoder, at most, to get the first frame (for its rotation)
_FIRST_FRAME_PACKETS = 64
#: how far back in decode order reordering is looked for (B-frame pyramids reach 3–4)
_REORDER_WINDOW = 32


@dataclass(frozen=True)
class VideoProbe:
    """Properties of a frame source.

    Attributes:
        width, height: displayed size (after rotation metadata is applied).
        fps: average frame rate, exact where packet timestamps allow (e.g. 30000/1001).
        frame_count: frames in the stream (packet count; file count for frame folders).
        header_frame_count: what the container's index announces (``None`` if it says nothing).
        duration: seconds.
        rotation: display rotation metadata in degrees counter-clockwise (0, 90, 180, 270).
        vfr: variable frame rate detected from packet timestamps (module doc, rule 4).
        codec, pix_fmt: stream codec and pixel format (``"png"``/``"rgb24"`` style names
            for frame folders).
        stream_error: what is wrong with the file when the packet listing shows damage or
            truncation (module doc, rule 2), else ``None``.
        time_base: seconds per timestamp tick (``None`` for frame folders).
        start_time: presentation time of the first frame in seconds; frame timestamps
            count from it.
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
    time_base: Fraction | None = None
    start_time: float = 0.0

    @property
    def damaged(self) -> bool:
        """The packet listing showed damage or truncation: fewer frames may decode than listed."""
        return self.stream_error is not None

    @property
    def expected_frames(self) -> int:
        """Frames a complete file would decode to: when the packet listing hit an error, the
        container's own index (if larger) says how many frames the file should have."""
        if self.stream_error and self.header_frame_count:
            return max(self.frame_count, self.header_frame_count)
        return self.frame_count

    def damage_message(self, decode_hint: bool = True) -> str | None:
        """One line for a damaged file (naming it), else ``None``; ``decode_hint`` points to
        ``vps probe --decode`` for the exact number of frames that decode."""
        if not self.damaged:
            return None
        hint = "; run vps probe --decode for the exact number of frames that decode" if decode_hint else ""
        return f"{self.path}: the file is damaged or truncated ({self.stream_error}){hint}"

    def to_json(self) -> dict:
        d = asdict(self)
        d["fps"] = float(self.fps)
        d["fps_rational"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["time_base"] = (
            None if self.time_base is None else f"{self.time_base.numerator}/{self.time_base.denominator}"
        )
        d["damaged"] = self.damaged
        return d


@dataclass(frozen=True)
class PacketListing:
    """The video packets of a file, demuxed but not decoded.

    Attributes:
        count: packets delivered (discard-flagged ones excluded).
        timestamps: ``(T,)`` int64 presentation timestamps in ticks, in decode order; packets
            without one are counted in ``count`` but absent here (``T <= count``).
        time_base: seconds per tick.
        problems: what went wrong while demuxing (read error, corrupt packets), in order.
    """

    count: int
    timestamps: np.ndarray
    time_base: Fraction
    problems: tuple[str, ...]


def _open_error(path: Path, reason: str) -> InputError:
    return InputError(
        f"not a readable video ({reason})",
        path=path,
        fix="check that the file is a complete video (mp4, avi, mkv, mov, mpg) or pass a frame folder",
    )


def open_container(path: Path):
    """``av.open`` for reading, with every failure turned into a one-line :class:`InputError`."""
    import av

    try:
        return av.open(str(path), mode="r", metadata_errors="replace")
    except av.error.FFmpegError as e:
        # worded as ffmpeg's command line words it, which is what vps said before it used
        # PyAV: scripts that match the message keep working
        raise _open_error(path, f"Error opening input files: {e.strerror or e}") from None
    except OSError as e:
        raise InputError(
            f"cannot open ({e.strerror or e})", path=path, fix="check the path and its permissions"
        ) from None


def video_stream(container, path: Path):
    """The first video stream of an open container; :class:`InputError` when there is none."""
    if not container.streams.video:
        container.close()
        raise _open_error(path, "no video stream found")
    return container.streams.video[0]


def reorder_depth(decode_order: np.ndarray) -> int:
    """Most frames decoded before a frame yet shown after it (0 without B-frames).

    ``decode_order``: ``(T,)`` presentation timestamps in decode order. Looks back
    :data:`_REORDER_WINDOW` packets, far more than any encoder reorders.
    """
    t = np.asarray(decode_order, dtype=np.int64)
    if len(t) < 2:
        return 0
    w = min(_REORDER_WINDOW, len(t) - 1)
    padded = np.concatenate([np.full(w, np.iinfo(np.int64).min), t])
    # row k: the w timestamps decoded just before t[k]
    before = np.lib.stride_tricks.sliding_window_view(padded[:-1], w)
    return int((before > t[:, None]).sum(axis=1).max())


def list_packets(container, stream) -> tuple[PacketListing, Any]:
    """Demux every packet of ``stream`` and list counts, timestamps and problems.

    Nothing is decoded except the first frame (for its display matrix, rule 7): the
    first packets go to the decoder as they pass until a frame comes out. Returns the
    listing and that frame (``None`` if none came out of the first packets).
    """
    import av

    count, pts, dts, problems, corrupt = 0, [], [], [], []
    first, fed = None, 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None and packet.dts is None:
                continue  # the empty packet PyAV yields at the end to flush decoders
            if packet.is_discard:
                continue
            count += 1
            if packet.is_corrupt:
                corrupt.append(count)
            pts.append(packet.pts)
            dts.append(packet.dts)
            if first is None and fed < _FIRST_FRAME_PACKETS:
                fed += 1
                try:
                    frames = stream.codec_context.decode(packet)
                except av.error.FFmpegError:
                    frames = []  # a damaged first packet: the next ones may still decode
                first = frames[0] if frames else None
    except av.error.FFmpegError as e:
        problems.append(f"reading stopped after {count} packets: {e.strerror or e}")
    if corrupt:  # one line however many: a damaged recording can have thousands
        problems.insert(
            0,
            f"packet #{corrupt[0]} is cut short or corrupt"
            if len(corrupt) == 1
            else f"{len(corrupt)} packets are cut short or corrupt (first: #{corrupt[0]})",
        )
    if first is None and fed:
        try:  # short videos: the decoder may still hold the first frame back
            frames = stream.codec_context.decode(None)
            first = frames[0] if frames else None
        except av.error.FFmpegError:
            pass
    with_pts = [p for p in pts if p is not None]
    # containers without presentation timestamps (some AVI) still have decode timestamps,
    # which equal them when frames are not reordered
    chosen = with_pts if 2 * len(with_pts) >= len(pts) else [d for d in dts if d is not None]
    listing = PacketListing(
        count, np.asarray(chosen, dtype=np.int64), Fraction(stream.time_base), tuple(problems)
    )
    return listing, first


def _rotation(frame) -> int:
    """Display rotation (degrees counter-clockwise, 0/90/180/270) from a decoded frame's matrix."""
    if frame is None:
        return 0
    angle = float(frame.rotation)
    nearest = round(angle / 90) * 90
    return int(nearest) % 360 if abs(angle - nearest) <= 1.0 else 0


def timing(
    listing: PacketListing, damaged: bool, declared: Fraction | None
) -> tuple[Fraction, bool, np.ndarray]:
    """Rules 3–5 of the module doc: ``(fps, vfr, timestamps used)``.

    Args:
        listing: the packets.
        damaged: rule 2 found damage (the last reordered timestamps are set aside).
        declared: the rate the container declares (``None`` if none).
    """
    ticks = np.sort(listing.timestamps)
    if damaged:
        drop = reorder_depth(listing.timestamps)
        ticks = ticks[: len(ticks) - drop] if drop else ticks
    fallback = declared if declared else FALLBACK_FPS
    if len(ticks) < 2 or ticks[-1] <= ticks[0]:
        return fallback, False, ticks
    tb = listing.time_base
    steps = len(ticks) - 1
    span = int(ticks[-1]) - int(ticks[0])
    frame_ticks = span / steps
    line = ticks[0] + frame_ticks * np.arange(len(ticks))
    vfr = bool(np.abs(ticks - line).max() > 1.0 + VFR_TOLERANCE * frame_ticks)
    measured = Fraction(steps) / (span * tb)
    if declared and not vfr and abs(1 / declared - 1 / measured) <= tb / steps:
        return declared, False, ticks
    return measured, vfr, ticks


def _declared_rate(stream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


def probe_video(path: str | Path) -> VideoProbe:
    """Probe a video file (module doc). Raises :class:`InputError` for missing or unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, fix="check the path")
    if path.stat().st_size == 0:
        raise InputError(
            "empty file (0 bytes)", path=path, fix="the copy or recording failed; get the video again"
        )
    container = open_container(path)
    try:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        listing, first = list_packets(container, stream)
        header_count = int(stream.frames) or None
        codec = ctx.name or "unknown"
        pix_fmt = ctx.pix_fmt or (first.format.name if first is not None else "unknown")
        w = ctx.width or (first.width if first is not None else 0)
        h = ctx.height or (first.height if first is not None else 0)
        declared = _declared_rate(stream)
        start = stream.start_time
    finally:
        container.close()
    if not (w and h):
        raise InputError("video stream has no frame size", path=path, fix="the file is damaged; re-export it")
    problems = list(listing.problems)
    if header_count and listing.count < header_count:
        problems.append(
            f"the container's index lists {header_count} frames, the file holds {listing.count} packets"
        )
    stream_error = "; ".join(problems) or None
    n = listing.count
    if n == 0:
        what = f" (its index lists {header_count}; the file is truncated)" if header_count else ""
        raise InputError(
            f"video has no frames{what}", path=path, fix="the file is empty or damaged; re-export it"
        )
    fps, vfr, ticks = timing(listing, stream_error is not None, declared)
    rotation = _rotation(first)
    if rotation in (90, 270):
        w, h = h, w
    tb = listing.time_base
    start_ticks = start if start is not None else (int(ticks[0]) if len(ticks) else 0)
    return VideoProbe(
        path=str(path),
        kind="video",
        width=int(w),
        height=int(h),
        fps=fps,
        frame_count=n,
        header_frame_count=header_count,
        duration=float(n / fps),
        rotation=rotation,
        vfr=vfr,
        codec=codec,
        pix_fmt=pix_fmt,
        stream_error=stream_error,
        time_base=tb,
        start_time=float(start_ticks * tb),
    )
