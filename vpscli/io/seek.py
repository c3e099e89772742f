"""A few frames of a video by timestamp, without decoding the whole file (episode thumbnails of a long video).

Each wanted frame is reached by seeking to the keyframe before it and decoding forward to the first frame
whose timestamp (counted from the stream's start, as :class:`~vpscli.io.sources.VideoFileSource` counts
it) reaches the wanted one, within half a frame. Rotation metadata is applied as the source applies it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["frames_at"]


def frames_at(
    path: str | Path, wanted: dict[int, float], rotation: int = 0, fps: float | None = None
) -> dict[int, np.ndarray]:
    """``{key: RGB frame}`` for each ``{key: timestamp in seconds}`` of ``wanted`` that the file holds
    (frames it cannot reach are left out; a damaged file gives what decodes)."""
    import av
    import cv2

    from vpscli.io.probe import open_container, video_stream

    tolerance = 0.5 / fps if fps else 1e-3
    rotate = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}.get(
        rotation
    )
    out: dict[int, np.ndarray] = {}
    container = open_container(Path(path))
    try:
        stream = video_stream(container, Path(path))
        time_base = Fraction(stream.time_base)
        start = stream.start_time or 0
        for key, t in sorted(wanted.items(), key=lambda kv: kv[1]):
            try:
                container.seek(start + int(Fraction(t) / time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    at = float((frame.pts - start) * time_base)
                    if at + tolerance >= t:
                        rgb = frame.to_ndarray(format="rgb24")
                        out[key] = cv2.rotate(rgb, rotate) if rotate is not None else rgb
                        break
            except (av.error.FFmpegError, ValueError):
                continue
    finally:
        container.close()
    return out
