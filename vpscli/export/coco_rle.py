"""COCO run-length encoding (what pycocotools calls uncompressed RLE).

``{"size": [H, W], "counts": [c0, c1, ...]}``: runs over the mask flattened in
**column-major** (Fortran) order, alternating background/foreground and starting with a
background run (0 when the first pixel is foreground). Used with ``iscrowd: 1``;
pycocotools reads it with ``frPyObjects``.
"""

from __future__ import annotations

import numpy as np


def run_lengths(flat: np.ndarray) -> list[int]:
    """Alternating run lengths of a 1-D bool array, starting with a (possibly empty) False run.

    >>> run_lengths(np.array([True, True, False, True]))
    [0, 2, 1, 1]
    """
    flat = np.asarray(flat, dtype=bool)
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0] + runs if flat[0] else runs


def encode_coco_rle(mask: np.ndarray) -> dict:
    """``(H, W)`` bool mask → ``{"size": [H, W], "counts": [...]}`` (column-major runs).

    >>> encode_coco_rle(np.array([[0, 1], [0, 1]], bool))
    {'size': [2, 2], 'counts': [2, 2]}
    """
    mask = np.asarray(mask, dtype=bool)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": run_lengths(mask.ravel(order="F"))}
