"""``--include-frames``: the decoded source frames, named as the export names them.

Every frame of ``--video`` is written as JPEG (quality 95) to ``folder/<stem(index)>.jpg``,
one frame in memory at a time, so a fresh annotation task created from these files lines
up with the exported masks with no other step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vpscli.errors import InputError
from vpscli.export.output_files import make_folder
from vpscli.io.atomic import write_bytes_atomic


def write_source_frames(source, folder: Path, frame_stem: Callable[[int], str], size: tuple[int, int]) -> int:
    """Write every frame of ``source`` (a :mod:`vpscli.io.sources` source) into ``folder``.

    Returns the number of frames written. Raises :class:`InputError` when a frame is not
    ``size`` ``(width, height)`` — the masks' size.
    """
    import cv2

    make_folder(folder)
    count = 0
    for frame in source:
        if frame.size != tuple(size):
            raise InputError(
                f"frame {frame.index} is {frame.size[0]}x{frame.size[1]}, masks are {size[0]}x{size[1]}",
                path=getattr(source, "path", None),
                fix="pass the video these masks were segmented from",
            )
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not ok:
            raise InputError(f"cannot encode frame {frame.index} as JPEG", path=getattr(source, "path", None))
        write_bytes_atomic(folder / f"{frame_stem(frame.index)}.jpg", data.tobytes())
        count += 1
    return count
