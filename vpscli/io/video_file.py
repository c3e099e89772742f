"""A video file as a frame source: decoded by PyAV to RGB, rotation applied once, exact timestamps;
decoding that stops early is a :class:`Truncation`."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from vpscli.errors import InputError
from vpscli.io.frames import Frame
from vpscli.io.probe import VideoProbe, open_container, probe_video, video_stream
from vpscli.io.run_folder import index_name


@dataclass
class Truncation:
    """Decoding stopped before the frame count the probe announced."""

    decoded: int
    expected: int

    def message(self, path: str) -> str:
        return (
            f"{path}: decoding stopped at frame {self.decoded} of {self.expected} "
            f"(the file is truncated or damaged); the {self.decoded} decoded frames were used"
        )


class VideoFileSource:
    """Frames of a video file, decoded by PyAV: RGB, rotation applied once, exact timestamps.

    Example: ``src = VideoFileSource("clip.mp4"); src.probe().fps; next(iter(src)).image``.

    Timestamps are each frame's presentation timestamp × the stream's time base, counted
    from the stream's start (exact for variable-frame-rate files). Frames are decoded one
    at a time (memory does not depend on the video's length); decoding errors inside the
    stream skip the damaged packet, and a file that ends early is reported in
    :attr:`truncation` after a full iteration.

    Why PyAV and not OpenCV (which decoded before): measured by ``benchmarks/bench_io.py``
    on the same H.264 files, RGB output, PyAV decodes as fast or faster (table in
    docs/explanation/pipeline.md, "Why PyAV decodes"), and its timestamps are the stream's own instead of
    OpenCV's millisecond estimate. FFmpeg's decoders give bit-identical frames whatever
    the number of threads, so threading never changes a result.
    """

    kind = "video"

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        self._probe: VideoProbe | None = None
        #: set after a full iteration when fewer frames decoded than probed
        self.truncation: Truncation | None = None
        #: frames actually decoded by the last full iteration
        self.decoded_count: int | None = None

    def probe(self) -> VideoProbe:
        if self._probe is None:
            self._probe = probe_video(self.path)
        return self._probe

    def __iter__(self) -> Iterator[Frame]:
        import cv2
        from av.video.reformatter import Interpolation, VideoReformatter

        probe = self.probe()
        container = open_container(self.path)
        index = 0
        try:
            stream = video_stream(container, self.path)
            # frame + slice threads; FFmpeg's decoders are bit-exact at any thread count
            stream.thread_type = "AUTO"
            time_base = Fraction(stream.time_base)
            start = stream.start_time
            # cv2.rotate writes the turned image in one pass (np.rot90 + a copy is slower)
            rotate = {
                90: cv2.ROTATE_90_COUNTERCLOCKWISE,
                180: cv2.ROTATE_180,
                270: cv2.ROTATE_90_CLOCKWISE,
            }.get(probe.rotation)
            # one converter for the whole video (it keeps its scaler set up); bicubic is what
            # OpenCV used, and only matters for >8-bit sources (8-bit 4:2:0 converts exactly)
            to_rgb = VideoReformatter()
            for frame in _decode(container, stream):
                if start is None:
                    start = frame.pts
                timestamp = float((frame.pts - start) * time_base)
                rgb: np.ndarray = to_rgb.reformat(
                    frame, format="rgb24", interpolation=Interpolation.BICUBIC
                ).to_ndarray()
                if rotate is not None:  # display matrix: counter-clockwise, as ffmpeg's autorotation turns it
                    rgb = cv2.rotate(rgb, rotate)
                yield Frame(
                    index=index, timestamp=timestamp, image=np.ascontiguousarray(rgb), name=index_name(index)
                )
                index += 1
        finally:
            container.close()
        self.decoded_count = index
        if index == 0:
            raise InputError(
                f"no frame could be decoded (the container announces {probe.expected_frames}; "
                "the file is truncated or damaged)",
                path=self.path,
                fix="copy or export the video again",
            )
        expected = probe.expected_frames
        self.truncation = Truncation(index, expected) if index < expected else None

    def __repr__(self) -> str:
        return f"VideoFileSource({str(self.path)!r})"


def _decode(container, stream) -> Iterator:
    """Decoded frames of ``stream`` in display order; damaged packets are skipped, and a
    read error ends the stream (the frames the decoder still holds are flushed out)."""
    import av

    ctx = stream.codec_context
    try:
        for packet in container.demux(stream):
            try:
                # the last packet PyAV yields is empty: it flushes the decoder
                frames = ctx.decode(packet)
            except av.error.EOFError:
                return
            except av.error.FFmpegError:
                continue  # a damaged packet; the decoder resynchronises on the next ones
            yield from frames
        return
    except av.error.FFmpegError:
        pass  # reading stopped inside the file (damage): flush below
    try:
        yield from ctx.decode(None)
    except av.error.FFmpegError:
        return
