"""CVAT for video/images 1.1 XML mask encoding.

A ``<mask>`` holds ``rle="c0, c1, ..."``, ``left``, ``top``, ``width``, ``height``: runs
over the instance's **tight bounding box** flattened **row-major**, alternating
background/foreground and starting with a background run (0 when the box's first pixel is
foreground). Pixel ``k`` of the box is at ``y, x = divmod(k, width)`` plus ``(top, left)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpscli.export.coco_rle import run_lengths


@dataclass(frozen=True)
class CvatMaskRle:
    """A CVAT XML mask: row-major runs over the box ``(left, top, width, height)``."""

    counts: list[int]
    left: int
    top: int
    width: int
    height: int

    @property
    def rle_text(self) -> str:
        """The ``rle`` attribute as CVAT writes it: ``"0, 5, 3"``."""
        return ", ".join(str(c) for c in self.counts)


def encode_cvat_rle(mask: np.ndarray) -> CvatMaskRle:
    """``(H, W)`` bool mask with at least one pixel → tight-box row-major RLE."""
    mask = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("cannot encode an empty mask as a CVAT mask")
    top, bottom, left, right = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    box = mask[top : bottom + 1, left : right + 1]
    return CvatMaskRle(run_lengths(box.ravel(order="C")), left, top, right - left + 1, bottom - top + 1)
