"""The normalised self-attention (NS) block of PNS-Net and PNS+, in pure PyTorch.

The original is a CUDA extension (``self_cuda_backend``: ``weight_forward``,
``map_forward``). This module reproduces its exact semantics with :func:`torch.nn.functional.unfold`
(spec §3.1–3.2):

- **Relevance**: for every query pixel, the dot product with the keys of a dilated
  ``(2r+1)×(2r+1)`` window at the same place in *every* key frame. Slots are ordered
  ``s·D² + a·D + b`` (key frame, kernel row, kernel column). A neighbour outside the map
  gets logit **0** (not −inf): it takes part in the softmax of the gate.
- **Aggregation** uses the **raw scaled logits**, not the softmax probabilities; values
  outside the map count as zeros.
- **Gate** ``M_S``: the maximum softmax probability over all heads and slots.
- **Query LayerNorm**: one ``LayerNorm(d_k, h, w)`` shared by all heads; it fixes the
  feature-map size (16×28 for the official 256×448 input).

The key frames may differ in number from the query frames (PNS+'s global block has one
query frame, the anchor, repeated over the clip: it is computed once and broadcast, which
gives exactly the original's output).

Two formulations of the same op, chosen by whether a gradient is needed:

- **unfolded** (training): :func:`ns_relevance` and :func:`ns_aggregate`, each window laid out by
  :func:`torch.nn.functional.unfold`; its backward is the faster one in torch (forward + backward,
  batch 4, two threads: 229 against 366 ms for the gathered one).
- **gathered** (inference and the exported graphs): every pixel's window taps read from a table of keys
  (and values) with one constant index (:func:`window_taps`), an all-zero row standing for the taps
  outside the map, and both products as batched matrix products. A table row holds one pixel's values in
  every key frame, so one gathered row serves all of them. The same sums in another order (float
  rounding apart); on the default's 16×28 map, one block, two threads: torch 25 → 13 ms, OpenVINO
  33 → 5.3 ms (unfold's im2col runs there as reference transposes; a row per pixel and key frame took
  6.5 ms: five times as many gathered rows, each a fifth as long).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpscli.models.gathered import constant_rows, gathering

__all__ = ["ns_relevance", "ns_aggregate", "window_taps", "NSBlock"]


def _unfold_frames(x: Tensor, radius: int, dilation: int) -> Tensor:
    """``(B, T, C, H, W)`` → ``(B, T, C, D², H, W)``: each pixel's dilated D×D neighbourhood,
    zero outside the map (D = 2·radius + 1; F.unfold orders kernel positions row-major)."""
    b, t, c, h, w = x.shape
    d = 2 * radius + 1
    cols = F.unfold(x.reshape(b * t, c, h, w), kernel_size=d, dilation=dilation, padding=radius * dilation)
    return cols.view(b, t, c, d * d, h, w)


def ns_relevance(query: Tensor, key: Tensor, radius: int, dilation: int) -> Tensor:
    """Relevance logits of the NS op (the CUDA ``weight_forward``), unscaled.

    Args:
        query: ``(B, Tq, C, H, W)``.
        key: ``(B, Tk, C, H, W)``.
        radius: window radius r (window D = 2r+1).
        dilation: spacing of the window's taps.

    Returns:
        ``(B, Tq, Tk·D², H, W)``; slot ``s·D² + a·D + b`` holds
        ``Σ_c q[t,c,h,w]·k[s,c,h+(a−r)·dil,w+(b−r)·dil]``, or 0 when that neighbour is outside
        the map.
    """
    b, tq, _, h, w = query.shape
    tk = key.shape[1]
    k_cols = _unfold_frames(key, radius, dilation)  # B, Tk, C, D², H, W
    logits = torch.einsum("btchw,bscohw->btsohw", query, k_cols)
    return logits.reshape(b, tq, tk * k_cols.shape[3], h, w)


def ns_aggregate(weight: Tensor, value: Tensor, radius: int, dilation: int) -> Tensor:
    """Aggregation of the NS op (the CUDA ``map_forward``): values weighted by the logits.

    Args:
        weight: ``(B, Tq, Tk·D², H, W)`` logits (not probabilities; that is the original's semantics).
        value: ``(B, Tk, C, H, W)``.

    Returns:
        ``(B, Tq, C, H, W)``: ``Σ_{s,a,b} weight[t, slot]·v[s, c, neighbour]``, out-of-map values
        counting as 0.
    """
    b, tq, _, h, w = weight.shape
    v_cols = _unfold_frames(value, radius, dilation)  # B, Tk, C, D², H, W
    tk, d2 = v_cols.shape[1], v_cols.shape[3]
    return torch.einsum("btsohw,bscohw->btchw", weight.view(b, tq, tk, d2, h, w), v_cols)


def window_taps(size: tuple[int, int], radius: int, dilation: int) -> Tensor:
    """``(H·W, D²)``: the flat index (``y·W + x``) of each pixel's dilated D×D window taps, row-major
    as :func:`ns_relevance` orders them; ``-1`` for a tap outside the map."""
    h, w = size
    d = 2 * radius + 1
    offsets = (torch.arange(d) - radius) * dilation
    ys = torch.arange(h).view(h, 1, 1, 1) + offsets.view(1, 1, d, 1)
    xs = torch.arange(w).view(1, w, 1, 1) + offsets.view(1, 1, 1, d)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    return torch.where(inside, ys * w + xs, -1).reshape(h * w, d * d)


class NSBlock(nn.Module):
    """Normalised self-attention block (official class ``NS_Block``; same parameter names).

    Args:
        channels: input/output channels C (32 in PNS-Net/PNS+).
        feature_size: ``(h, w)`` of the feature map; fixes the query LayerNorm's shape
            ``(C/heads, h, w)`` — (16, 28) for the official 256×448 input.
        heads: number of heads n (4); ``d_k = d_v = C / n``.
        radius: window radius per head (3 everywhere in the official models).
        dilation: dilation per head: PNS-Net ``[1, 3, 5, 7]``; PNS+ global ``[3, 4, 3, 4]``,
            local ``[1, 2, 1, 2]``.

    Shape:
        - first: ``(B, Tq, C, h, w)`` — queries (``Tq`` = 1 or ``Tk``).
        - x: ``(B, Tk, C, h, w)`` — keys and values.
        - Output: ``(B, Tk, C, h, w)`` (a single query frame is broadcast over the ``Tk`` key
          frames, as the original's repeated anchor is). The block has no residual; callers add it.
    """

    def __init__(
        self,
        channels: int = 32,
        feature_size: tuple[int, int] = (16, 28),
        heads: int = 4,
        radius: Sequence[int] = (3, 3, 3, 3),
        dilation: Sequence[int] = (1, 3, 5, 7),
    ):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if len(radius) != heads or len(dilation) != heads:
            raise ValueError("radius and dilation need one entry per head")
        if min(radius) < 0 or min(dilation) < 1:
            raise ValueError(
                f"radius must be ≥ 0 and dilation ≥ 1, got {tuple(radius)} and {tuple(dilation)}"
            )
        self.heads = heads
        self.feature_size: tuple[int, int] = (int(feature_size[0]), int(feature_size[1]))
        self.head_dim = channels // heads
        self.radius = tuple(int(r) for r in radius)
        self.dilation = tuple(int(d) for d in dilation)
        self.query_conv = nn.Conv3d(channels, channels, 1, bias=False)
        self.key_conv = nn.Conv3d(channels, channels, 1, bias=False)
        self.value_conv = nn.Conv3d(channels, channels, 1, bias=False)
        self.output_Linear = nn.Conv3d(channels, channels, 1, bias=False)
        # One LayerNorm shared by all heads (the official "self-adapting layer normalisation").
        self.bn = nn.LayerNorm([self.head_dim, *feature_size])

    def extra_repr(self) -> str:
        return (
            f"channels={self.heads * self.head_dim}, heads={self.heads}, feature_size={self.feature_size}, "
            f"radius={self.radius}, dilation={self.dilation}"
        )

    @staticmethod
    def _pointwise(conv: nn.Conv3d, x: Tensor) -> Tensor:
        # A 1×1×1 Conv3d over (B, C, T, H, W) is a per-pixel linear map; einsum avoids the
        # two layout permutations of the original and works for any memory format.
        return torch.einsum("oc,btchw->btohw", conv.weight.flatten(1).to(x.dtype), x)

    def forward(self, first: Tensor, x: Tensor) -> Tensor:
        b, tk = x.shape[:2]
        query = self._pointwise(self.query_conv, first)
        key = self._pointwise(self.key_conv, x)
        value = self._pointwise(self.value_conv, x)
        # the same op either way (module doc): unfold's backward is the faster, gathering the faster forward
        mixed, gate = (self._gathered if gathering() else self._unfolded)(query, key, value)
        out = self._pointwise(self.output_Linear, mixed) * gate.to(x.dtype).unsqueeze(2)
        if out.shape[1] != tk:
            out = out.expand(b, tk, *out.shape[2:])
        return out

    def _unfolded(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Head by head with unfolded windows: the aggregated values ``(B, Tq, C, h, w)`` and the gate
        ``(B, Tq, h, w)``."""
        scale = 1.0 / math.sqrt(self.head_dim)
        outs, gates = [], []
        for i, (q, k, v) in enumerate(
            zip(query.chunk(self.heads, 2), key.chunk(self.heads, 2), value.chunk(self.heads, 2))
        ):
            q = self.bn(q)
            logits = ns_relevance(q, k, self.radius[i], self.dilation[i]) * scale
            # Gate: the head's largest softmax probability (max_j softmax(x)_j = 1/Σ exp(x − max)).
            # (softmax in at least float32: bf16/fp16 logits are upcast.)
            gates.append(
                torch.softmax(logits, dim=2, dtype=torch.promote_types(logits.dtype, torch.float32)).amax(
                    dim=2
                )
            )
            outs.append(ns_aggregate(logits, v, self.radius[i], self.dilation[i]))
        return torch.cat(outs, 2), torch.stack(gates, 0).amax(0)

    def _gathered(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """All heads at once, each pixel's taps gathered by index: :meth:`_unfolded`'s results."""
        b, tq, c, h, w = query.shape
        tk, n, hd, hw = key.shape[1], self.heads, self.head_dim, h * w
        q = self.bn(query.reshape(b, tq, n, hd, h, w)) * (1.0 / math.sqrt(hd))
        q = q.reshape(b, tq, n, hd, hw).permute(0, 2, 4, 1, 3)  # B, n, hw, Tq, hd
        index = self._taps(key.device)
        slots = index.shape[-1] * tk

        # one table row per (head, pixel) with its values in every key frame (module doc); the slots come
        # out tap-major (tap·Tk + frame): ns_relevance's frame-major products, summed in another order
        def taps(t: Tensor) -> Tensor:  # (B, Tk, C, h, w) → (B, n, hw, D²·Tk, hd); out of the map: 0
            rows = t.reshape(b, tk, n, hd, hw).permute(0, 2, 4, 1, 3).reshape(b, n * hw, tk * hd)
            rows = torch.cat([rows, rows.new_zeros(b, 1, tk * hd)], 1)
            return torch.index_select(rows, 1, index.reshape(-1)).view(b, n, hw, slots, hd)

        logits = torch.matmul(q, taps(key).transpose(-1, -2))  # B, n, hw, Tq, D²·Tk
        # Gate: max over heads and slots of softmax = 1 / min over heads of Σ exp(x − max) (in ≥ float32)
        wide = logits.to(torch.promote_types(logits.dtype, torch.float32))
        spread = torch.exp(wide - wide.amax(-1, keepdim=True)).sum(-1)  # B, n, hw, Tq
        gate = spread.amin(1).reciprocal().permute(0, 2, 1).reshape(b, tq, h, w)
        mixed = torch.matmul(logits, taps(value))  # B, n, hw, Tq, hd
        return mixed.permute(0, 3, 1, 4, 2).reshape(b, tq, c, h, w), gate

    def _taps(self, device: torch.device) -> Tensor:
        """``(heads, H·W, D²)`` rows of :meth:`_gathered`'s table (head, pixel), in :func:`window_taps`'
        order; taps outside the map point at the zero row at the end."""

        def make() -> np.ndarray:
            hw = self.feature_size[0] * self.feature_size[1]
            heads = []
            for i in range(self.heads):
                taps = window_taps(self.feature_size, self.radius[i], self.dilation[i]).numpy()
                heads.append(np.where(taps >= 0, i * hw + taps, self.heads * hw))
            return np.stack(heads)

        return constant_rows(("ns-taps", self.feature_size, self.radius, self.dilation), make, device)
