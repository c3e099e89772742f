"""The page's timeline as a small SVG: the peak probability per frame (a filled curve), the flagged frames,
those the persistence filter suppressed, the episodes kept and, with ground truth, the GT polyp frames.

A long video has far more frames than the timeline has pixels, so frames are pooled into at most
``bins`` columns (the maximum of the peak, and "any" for each band): a 1-hour video at 25 fps
(90,000 frames) is a few hundred kilobytes of SVG, not tens of megabytes. Episodes keep their exact
start and end. Times on the x axis are the frames' own timestamps (a variable frame rate is drawn as
recorded).
"""

from __future__ import annotations

import numpy as np

from vpscli.report.data import RunReport

__all__ = ["timeline_svg", "TIMELINE_BINS"]

#: columns of the timeline (a column per pixel of a wide screen)
TIMELINE_BINS = 1200
_W, _CURVE_H, _BAND_H, _GAP = 1200.0, 60.0, 8.0, 3.0


def _pool(values: np.ndarray, edges: np.ndarray, how) -> np.ndarray:
    """``how`` (np.maximum / np.logical_or) of ``values`` within each bin ``[edges[i], edges[i+1])``."""
    if not len(values):
        return np.zeros(len(edges) - 1, values.dtype)
    starts = np.minimum(edges[:-1], len(values) - 1)
    pooled = how.reduceat(values, starts)
    return np.where(edges[1:] > edges[:-1], pooled, np.zeros_like(pooled))  # an empty bin holds nothing


def _band(mask: np.ndarray, edges: np.ndarray, y: float, cls: str, title: str) -> str:
    hit = _pool(mask.astype(bool), edges, np.logical_or)
    step = _W / len(hit)
    rects, i = [], 0
    while i < len(hit):  # one rectangle per run of set columns
        if hit[i]:
            j = i
            while j + 1 < len(hit) and hit[j + 1]:
                j += 1
            rects.append(
                f'<rect x="{i * step:.1f}" y="{y:.1f}" width="{(j - i + 1) * step:.1f}" '
                f'height="{_BAND_H:.0f}"/>'
            )
            i = j + 1
        else:
            i += 1
    return f'<g class="{cls}"><title>{title}</title>{"".join(rects)}</g>'


def timeline_svg(run: RunReport, bins: int = TIMELINE_BINS) -> str:
    """The timeline of ``run`` (an ``<svg>`` element; x maps to time in ``data-duration`` seconds)."""
    n = run.frames
    duration = max(run.duration_s, 1e-9)
    cols = max(1, min(bins, n))
    # the bin of each frame by its time, so that x is time even at a variable frame rate
    frame_bin = (
        np.minimum((run.timestamps / duration * cols).astype(np.int64), cols - 1) if n else np.zeros(0, int)
    )
    edges = np.searchsorted(frame_bin, np.arange(cols + 1)) if n else np.zeros(cols + 1, int)
    peak = _pool(run.peak, edges, np.maximum) if n else np.zeros(cols)
    step = _W / cols
    points = " ".join(
        f"{i * step:.1f},{_CURVE_H * (1 - p):.1f} {(i + 1) * step:.1f},{_CURVE_H * (1 - p):.1f}"
        for i, p in enumerate(peak)
    )
    curve = (
        f'<polygon class="peak" points="0,{_CURVE_H:.0f} {points} {_W:.0f},{_CURVE_H:.0f}">'
        "<title>peak probability per frame</title></polygon>"
    )
    y = _CURVE_H + _GAP
    bands = []
    for mask, cls, title in (
        (run.flagged, "flagged", "flagged by the model"),
        (run.suppressed, "suppressed", "suppressed by the persistence filter"),
    ):
        bands.append(_band(mask, edges, y, cls, title) if n else "")
        y += _BAND_H + _GAP
    episodes = "".join(
        f'<rect class="episode" data-episode="{e.number}" x="{e.start_s / duration * _W:.1f}" y="{y:.1f}" '
        f'width="{max((e.end_s - e.start_s) / duration * _W, 1.0):.1f}" height="{_BAND_H:.0f}">'
        f"<title>episode {e.number}: {e.start_s:.2f}–{e.end_s:.2f} s</title></rect>"
        for e in run.episodes
    )
    bands.append(f'<g class="kept">{episodes}</g>')
    y += _BAND_H + _GAP
    if run.gt_positive is not None:
        bands.append(_band(run.gt_positive, edges, y, "gt", "ground truth: polyp"))
        y += _BAND_H + _GAP
    threshold = run.record.get("presence") or run.record.get("threshold") or 0.5
    line = _CURVE_H * (1 - float(threshold))
    return (
        f'<svg id="timeline" viewBox="0 0 {_W:.0f} {y:.0f}" preserveAspectRatio="none" '
        f'data-duration="{duration:.6f}" role="img" aria-label="timeline">'
        f'<line class="threshold" x1="0" x2="{_W:.0f}" y1="{line:.1f}" y2="{line:.1f}"/>'
        f'{curve}{"".join(bands)}<line id="playhead" x1="0" x2="0" y1="0" y2="{y:.0f}"/></svg>'
    )
