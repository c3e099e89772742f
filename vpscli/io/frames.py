"""The unit every source yields: one decoded frame with its index, timestamp and name."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source (decode order = display order).
        timestamp: presentation time in seconds (true PTS for videos, ``index / fps`` for
            frame folders).
        image: ``(H, W, 3)`` uint8 RGB, rotation metadata already applied.
        name: the output name stem: ``000123`` for videos, the file stem for frame folders.
    """

    index: int
    timestamp: float
    image: np.ndarray = field(repr=False)
    name: str

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.image.shape[1], self.image.shape[0]
