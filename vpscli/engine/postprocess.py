"""From the model's logits to what a frame's outputs need, at the source resolution.

:class:`SourceUpsampler` turns a clip's logits ``(k, 1, h, w)`` (the model's input size) into,
per frame, the mask ``p ≥ threshold``, its box and area, the peak ``max(p)`` and (``probs``) the
probability ``floor(255·p)`` at the source size ``H×W``, where ``p`` is the bilinear upsampling
(half-pixel centres, as ``align_corners=False``) of ``sigmoid(logits)``.

Only the region where something can matter is computed. Bilinear interpolation is a convex
combination of four neighbouring cells, so an output pixel whose four cells all lie below ``t``
is below ``t``; and some output pixel gives the peak cell at least a share ``s`` of its weight
(:attr:`AxisWeights.min_cell_weight` of both axes: about 0.78 from 448×256 to 1080p), so the
upsampled peak is at least ``s·peak`` and every pixel that reaches it has a cell at least that
high. With ``t`` under the threshold, ``s·peak`` and, when the probability maps are asked for,
``1/255`` (where ``floor(255·p)`` becomes 1), everything outside the bounding box of the cells
``≥ t`` is background, 0 in the probability map and below the peak, and is never computed.
A polyp covers a few percent of a frame and a clean frame nothing, so a 1080p frame costs a
fraction of its 2 M pixels (measured in ``benchmarks/bench_segment.py --model-free``); without
the probability maps the faint haze a model leaves around the frame (levels 1 to 10 of 255 over
much of it) is skipped too.

Each output pixel is computed by the same elementwise operations (a gather and a ``lerp`` per
axis) whatever region it lies in, so the region choice does not change a value: the masks, boxes,
areas and peaks are the same with and without the probability maps, bit for bit (tested), and
the CPU and CUDA agree to float rounding. The host waits for the device twice per clip (the
regions, then all frames' results in one copy), never per frame.

A frame whose whole map stays below both ``1/255`` and the threshold has no mask (and an all-zero
probability map); its ``max_prob`` is then the peak of the model's own map — an upper bound (to
float rounding) of the upsampled peak, which is not computed, and below 0.004.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = ["AxisWeights", "FramePrediction", "SourceUpsampler", "bilinear_axis"]

#: margin under the region bound: a convex combination rounded in float32 may exceed its largest
#: term by a few ulps, never by 0.1 %
_ROUNDING_MARGIN = 0.999


@dataclass(frozen=True)
class AxisWeights:
    """Bilinear sampling along one axis: output position ``i`` is ``lerp(x[i0[i]], x[i1[i]], w1[i])``, i.e.
    ``(1 − w1[i])·x[i0[i]] + w1[i]·x[i1[i]]``.

    ``i0``/``i1`` are non-decreasing; the numpy copies (``i0_host``, ``i1_host``) choose regions
    without asking the device. ``min_cell_weight``: every input cell has an output position that
    gives it at least this weight (0 when some cell is read by none, as in a strong downsampling).
    """

    i0: Tensor
    i1: Tensor
    w1: Tensor
    i0_host: np.ndarray = field(repr=False)
    i1_host: np.ndarray = field(repr=False)
    min_cell_weight: float = 0.0

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """Output positions ``[start, stop)`` that read any input cell in ``[lo, hi]``."""
        start = int(np.searchsorted(self.i1_host, lo, side="left"))
        stop = int(np.searchsorted(self.i0_host, hi, side="right"))
        return start, max(start, stop)


def bilinear_axis(n_in: int, n_out: int, device: torch.device | str = "cpu") -> AxisWeights:
    """Sampling positions and weights of ``n_in → n_out`` bilinear resampling with half-pixel
    centres (``src = (dst + 0.5)·n_in/n_out − 0.5``, clamped at 0, as ``F.interpolate`` with
    ``align_corners=False``). Computed in float64 on the host, so every device gets the same weights."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, None)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = np.clip(src - i0, 0.0, 1.0).astype(np.float32)
    w1 = np.where(i1 == i0, np.float32(0.0), lam).astype(np.float32)
    # the largest weight each input cell receives from any output position (i0 == i1 reads one cell twice)
    weight = np.zeros(n_in)
    np.maximum.at(weight, i0, 1.0 - w1 + np.where(i1 == i0, w1, 0.0))
    np.maximum.at(weight, i1, w1 + np.where(i1 == i0, 1.0 - w1, 0.0))
    dev = torch.device(device)
    return AxisWeights(
        torch.from_numpy(i0).to(dev),
        torch.from_numpy(i1).to(dev),
        torch.from_numpy(w1).to(dev),
        i0,
        i1,
        float(weight.min()),
    )


@dataclass(frozen=True)
class FramePrediction:
    """One frame's outputs at the source resolution.

    Attributes:
        prob: ``(H, W)`` uint8 ``floor(255·p)``; ``None`` when the upsampler leaves the probability
            maps out (``probs=False``).
        mask: ``(H, W)`` bool ``p ≥ threshold``.
        max_prob: peak probability (module doc).
        box: ``(x, y, w, h)`` bounding box of the mask, ``None`` when it is empty.
        area: mask pixels.
    """

    prob: np.ndarray | None = field(repr=False)
    mask: np.ndarray = field(repr=False)
    max_prob: float
    box: tuple[int, int, int, int] | None
    area: int


class SourceUpsampler:
    """Logits at the model's input size → :class:`FramePrediction` at the source size.

    Args:
        in_hw: ``(h, w)`` of the logits.
        out_hw: ``(H, W)`` of the source frames.
        threshold: mask threshold in [0, 1].
        device: where the logits are (the weights are put there once).
        probs: compute the probability maps ``floor(255·p)``; without them a frame costs only the
            region around what reaches the threshold or the peak (module doc).

    Example::

        up = SourceUpsampler((256, 448), (1080, 1920), 0.5, "cuda")
        frames = up(logits[0])            # logits (T, 1, 256, 448) → T FramePredictions
    """

    def __init__(
        self,
        in_hw: tuple[int, int],
        out_hw: tuple[int, int],
        threshold: float,
        device: torch.device | str = "cpu",
        probs: bool = True,
    ):
        self.in_hw, self.out_hw = (int(in_hw[0]), int(in_hw[1])), (int(out_hw[0]), int(out_hw[1]))
        self.threshold = float(threshold)
        self.probs = bool(probs)
        self.rows = bilinear_axis(self.in_hw[0], self.out_hw[0], device)
        self.cols = bilinear_axis(self.in_hw[1], self.out_hw[1], device)
        #: some output pixel is at least this share of the peak cell's value (0: the whole frame counts)
        self._peak_share = self.rows.min_cell_weight * self.cols.min_cell_weight
        #: no frame below this has a mask or a non-zero probability level: none is computed
        self._floor = min(1.0 / 255.0, self.threshold)

    def __repr__(self) -> str:
        return (
            f"SourceUpsampler(in_hw={self.in_hw}, out_hw={self.out_hw}, threshold={self.threshold}, "
            f"probs={self.probs})"
        )

    def _bound(self, peak: Tensor) -> Tensor:
        """Per frame: the value under which a cell cannot make an output pixel matter (module doc)."""
        limit = self._floor if self.probs else self.threshold
        return torch.clamp(peak * self._peak_share, max=limit) * _ROUNDING_MARGIN

    def upsample(self, p: Tensor, rows: tuple[int, int] = (0, -1), cols: tuple[int, int] = (0, -1)) -> Tensor:
        """Bilinear upsampling of ``p`` ``(k, h, w)`` float32 restricted to output rows ``[r0, r1)`` and
        columns ``[c0, c1)`` (``-1``: to the end) → ``(k, r1−r0, c1−c0)``; identical to the same region of
        the whole-frame result.

        Columns first, on the transposed map, so that both passes gather whole rows (``index_select``)
        and blend them with one ``lerp`` each: as fast as ``F.interpolate`` on a whole frame. The first
        pass reads only the input rows the output rows ``[r0, r1)`` read.
        """
        r0, r1 = rows[0], self.out_hw[0] if rows[1] < 0 else rows[1]
        c0, c1 = cols[0], self.out_hw[1] if cols[1] < 0 else cols[1]
        if r1 <= r0 or c1 <= c0:
            return p.new_zeros((p.shape[0], max(r1 - r0, 0), max(c1 - c0, 0)))
        ry, rx = self.rows, self.cols
        # the input rows read (the indices do not decrease)
        lo, hi = int(ry.i0_host[r0]), int(ry.i1_host[r1 - 1]) + 1
        pt = p[:, lo:hi].transpose(1, 2).contiguous()  # (k, w, hi − lo)
        x = torch.lerp(pt.index_select(1, rx.i0[c0:c1]), pt.index_select(1, rx.i1[c0:c1]), rx.w1[c0:c1, None])
        xt = x.transpose(1, 2).contiguous()  # (k, hi − lo, c1 − c0)
        return torch.lerp(
            xt.index_select(1, ry.i0[r0:r1] - lo), xt.index_select(1, ry.i1[r0:r1] - lo), ry.w1[r0:r1, None]
        )

    def __call__(self, logits: Tensor) -> list[FramePrediction]:
        """``logits`` ``(k, 1, h, w)`` (any float dtype, on the device) → ``k`` frame predictions."""
        with torch.inference_mode():
            p = torch.sigmoid(logits[:, 0].float())  # (k, h, w)
            peak = p.amax(dim=(1, 2))
            cells = p >= self._bound(peak)[:, None, None]
            # one wait for the device per clip: which cells matter, and each frame's cell peak
            row_any, col_any, peaks = (t.cpu().numpy() for t in (cells.any(dim=2), cells.any(dim=1), peak))
            # per frame: its (rows, columns) spans that can matter, None when nothing can
            regions: list[tuple[tuple[int, int], tuple[int, int]] | None] = []
            pieces: list[Tensor] = []
            for j in range(p.shape[0]):
                rows_hit, cols_hit = np.flatnonzero(row_any[j]), np.flatnonzero(col_any[j])
                empty = peaks[j] < self._floor or not len(rows_hit)
                if empty:
                    regions.append(None)
                    continue
                ys = self.rows.span(int(rows_hit[0]), int(rows_hit[-1]))
                xs = self.cols.span(int(cols_hit[0]), int(cols_hit[-1]))
                up = self.upsample(p[j : j + 1], ys, xs)[0]
                if self.probs:  # floor: up ∈ [0, 1], so the cast truncates ≥ 0
                    pieces.append((up * 255.0).to(torch.uint8).reshape(-1))
                pieces += [
                    (up >= self.threshold).reshape(-1).to(torch.uint8),
                    up.amax().reshape(1).view(torch.uint8),
                ]
                regions.append((ys, xs))
            # a second wait: every frame's region values in one copy
            flat = torch.cat(pieces).cpu().numpy() if pieces else np.zeros(0, np.uint8)
        return self._assemble(regions, flat, peaks)

    def _assemble(self, regions, flat: np.ndarray, peaks: np.ndarray) -> list[FramePrediction]:
        """Place each frame's region into full-size zero maps; mask boxes and areas from the region."""
        h, w = self.out_hw
        out, at = [], 0
        for j, region in enumerate(regions):
            prob = np.zeros((h, w), np.uint8) if self.probs else None
            mask = np.zeros((h, w), bool)
            if region is None:
                out.append(FramePrediction(prob, mask, float(peaks[j]), None, 0))
                continue
            (y0, y1), (x0, x1) = region
            n = (y1 - y0) * (x1 - x0)
            if prob is not None:
                prob[y0:y1, x0:x1] = flat[at : at + n].reshape(y1 - y0, x1 - x0)
                at += n
            hit = flat[at : at + n].reshape(y1 - y0, x1 - x0).view(bool)
            peak = float(flat[at + n : at + n + 4].view(np.float32)[0])
            at += n + 4
            mask[y0:y1, x0:x1] = hit
            area = int(np.count_nonzero(hit))
            box = None
            if area:
                ys, xs = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
                box = (x0 + int(xs[0]), y0 + int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))
            out.append(FramePrediction(prob, mask, peak, box, area))
        return out
