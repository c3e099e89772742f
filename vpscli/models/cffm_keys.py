"""Where the CFFM attention's queries, keys and values come from, as constant row indices.

:class:`~vpscli.models.cffm_attention.CFFMAttention` gathers, when no gradient is needed, every window's
49 queries and 289 keys (its own pixels, the 3-px ring of the four rolled windows, and the unfolded
neighbourhoods of the pooled target and of each reference frame) from one table of tokens. These functions
compute which rows, on the host with numpy, once per shape: the same positions as the original's rolls,
window partitions and ``F.unfold``, tested against them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "ring_positions",
    "roll_shifts",
    "unfold_positions",
    "window_key_index",
    "window_positions",
]


def window_positions(hp: int, wp: int, window: int) -> np.ndarray:
    """``(nW, window²)``: the flat position ``y·wp + x`` of every window's pixels, windows and pixels
    row-major (the order of ``cffm_attention._windows``)."""
    wy, wx, py, px = np.meshgrid(
        np.arange(hp // window), np.arange(wp // window), np.arange(window), np.arange(window), indexing="ij"
    )
    return ((wy * window + py) * wp + wx * window + px).reshape(-1, window * window)


def roll_shifts(expand: int) -> tuple[tuple[int, int], ...]:
    """The four diagonal ``torch.roll`` shifts whose windows hold each window's ring, in key order."""
    return ((-expand, -expand), (-expand, expand), (expand, -expand), (expand, expand))


def ring_positions(window: int, expand: int) -> np.ndarray:
    """Which positions of the four rolled windows (concatenated, ``4·window²``) are ring keys: those not
    already inside the window (33 of 49 per shift for window 7, expand 3; 132 in all)."""
    keep = np.ones((4, window, window), bool)
    for k, (sy, sx) in enumerate(roll_shifts(expand)):
        # a shift by −e brings rows e… of the neighbourhood into the window's first rows: those repeat it
        rows = slice(None, -expand) if sy < 0 else slice(expand, None)
        cols = slice(None, -expand) if sx < 0 else slice(expand, None)
        keep[k, rows, cols] = False
    return np.flatnonzero(keep)


def unfold_positions(h: int, w: int, kernel: int, stride: int) -> np.ndarray:
    """``(L, kernel²)``: the flat position ``y·w + x`` of each tap of ``cffm_attention._unfold_tokens``
    (``F.unfold`` with zero padding ``kernel // 2``; output positions and taps row-major); ``-1`` for padding."""
    pad = kernel // 2
    ys = np.arange((h + 2 * pad - kernel) // stride + 1) * stride - pad
    xs = np.arange((w + 2 * pad - kernel) // stride + 1) * stride - pad
    y = ys[:, None, None, None] + np.arange(kernel)[None, None, :, None]
    x = xs[None, :, None, None] + np.arange(kernel)[None, None, None, :]
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    return np.where(inside, y * w + x, -1).reshape(len(ys) * len(xs), kernel * kernel)


def window_key_index(
    size: tuple[int, int], window: int, expand: int, groups: Sequence[tuple[int, int, int, int]]
) -> np.ndarray:
    """Where :class:`~vpscli.models.cffm_attention.CFFMAttention`'s keys come from, for the gathered formulation.

    Args:
        size: ``(Hp, Wp)`` of the target's map (multiples of ``window``).
        window, expand: as :class:`~vpscli.models.cffm_attention.CFFMAttention`'s.
        groups: ``(h, w, kernel, stride)`` of each pooled token map, in key order.

    Returns:
        ``(nW, N)`` long: each window's keys (its own pixels, the ring, each group's unfolded taps) as rows
        of the table ``[target map (Hp·Wp), each group's map (h·w), one zero row]``, flattened row-major.
    """
    hp, wp = size
    own = window_positions(hp, wp, window)
    ys, xs = np.divmod(own, wp)
    rolled = [  # torch.roll(x, (sy, sx))[y, x] is x[(y − sy) mod Hp, (x − sx) mod Wp]
        ((ys - sy) % hp) * wp + (xs - sx) % wp for sy, sx in roll_shifts(expand)
    ]
    parts = [own, np.concatenate(rolled, 1)[:, ring_positions(window, expand)]]
    offset = hp * wp
    tables = offset + sum(h * w for h, w, _, _ in groups)  # the zero row
    for h, w, kernel, stride in groups:
        taps = unfold_positions(h, w, kernel, stride)
        if taps.shape[0] != own.shape[0]:
            raise ValueError(
                f"a {h}×{w} token map unfolds to {taps.shape[0]} positions, not {own.shape[0]} windows"
            )
        parts.append(np.where(taps >= 0, offset + taps, tables))
        offset += h * w
    return np.concatenate(parts, 1)
