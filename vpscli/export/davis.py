"""DAVIS / VOS layout (SAM 2, XMem, Cutie): P-mode palette PNGs per frame.

``OUT/Annotations/<video>/00000.png``: index 0 background, 1 polyp (DAVIS palette, dark red
128,0,0), named by the 0-based source frame index, 5 digits (more when needed).
``--include-frames`` writes ``OUT/JPEGImages/<video>/00000.jpg`` to match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from vpscli.export.instances import FrameInstances
from vpscli.export.output_files import make_folder, palette_png_bytes, voc_palette
from vpscli.io.atomic import write_bytes_atomic


def davis_frame_name(index: int) -> str:
    """DAVIS frame stem: ``00123``."""
    return f"{index:05d}"


def write_davis(frames: Iterable[FrameInstances], out: Path, video: str) -> Path:
    """Write ``OUT/Annotations/<video>/*.png``; returns that folder."""
    folder = make_folder(out / "Annotations" / video)
    palette = voc_palette()
    for frame in frames:
        write_bytes_atomic(
            folder / f"{davis_frame_name(frame.index)}.png",
            palette_png_bytes(frame.mask.astype(np.uint8), palette),
        )
    return folder
