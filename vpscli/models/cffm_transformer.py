"""The CFFM transformer (Sun et al., CVPR 2022: coarse-to-fine feature mining) that enhances the
target frame of :class:`~vpscli.models.cffm.CFFMHead` with its reference frames.

The original ``BasicLayer3d3`` of ``GuoleiSun/VSS-CFFM``: 2 focal blocks, 8 heads, window 7, focal
level 2, focal window 5, expand 3, ``pool_method='fc'``, clip granularities [1, 2, 3] with unfold
kernels [7, 5, 3], at stride 8, in which the *target* frame attends to:

- its own 7×7 window (49 tokens) and the 3-px ring around it (132 tokens, rolled
  cyclically — ``torch.roll`` wraps at the borders, as in the original);
- its windows pooled to one token each, 5×5 neighbourhood (25 tokens);
- reference frames t−9, t−6, t−3 pooled at granularities 1, 2, 3 (49, 25, 9 tokens):
  far frames coarse and wide, near frames fine and narrow.

Parameter names are the original's. The attention is :class:`~vpscli.models.cffm_attention.CFFMAttention`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpscli.models.cffm_attention import CFFMAttention

__all__ = ["CFFMTransformer", "CFFMBlock", "FocalMlp"]


def _pool_windows(x: Tensor, size: int, pool: nn.Module) -> Tensor:
    """Pool each ``size×size`` window to one token with a learned Linear(size²→1):
    ``(B, H, W, C)`` → ``(B, H/size, W/size, C)``."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 5, 2, 4)
    return pool(x.reshape(b, h // size, w // size, c, size * size)).squeeze(-1)


class FocalMlp(nn.Module):
    """Linear → GELU → Linear. Shape: ``(..., C)`` → ``(..., C)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CFFMBlock(nn.Module):
    """One CFFM transformer block (the original ``CffmTransformerBlock3d3``): only the
    target (last) frame is updated; references pass through unchanged.

    Shape: ``(B, F, H, W, C)`` with frames ``[ref_far, ref_mid, ref_near, target]`` → same.
    """

    def __init__(
        self,
        dim: int = 256,
        heads: int = 8,
        window: int = 7,
        mlp_ratio: float = 4.0,
        clip_levels: Sequence[int] = (1, 2, 3),
        clip_kernels: Sequence[int] = (7, 5, 3),
    ):
        super().__init__()
        self.window = window
        self.clip_levels = tuple(clip_levels)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CFFMAttention(dim, heads, window, clip_levels=clip_levels, clip_kernels=clip_kernels)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FocalMlp(dim, int(dim * mlp_ratio))
        # Learned window pooling, initialised to the mean (as in the original).
        self.pool_layers = nn.ModuleList([nn.Linear(window * window, 1)])
        self.pool_layers_clips = nn.ModuleList(
            [nn.Linear((window // lvl) ** 2, 1) for lvl in self.clip_levels]
        )
        for pool in [*self.pool_layers, *self.pool_layers_clips]:
            nn.init.constant_(pool.weight, 1.0 / pool.in_features)
            nn.init.zeros_(pool.bias)

    def extra_repr(self) -> str:
        return f"window={self.window}, clip_levels={self.clip_levels}"

    def forward(self, x: Tensor) -> Tensor:
        b, f, h0, w0, c = x.shape
        ws = self.window
        xn = self.norm1(x)
        pad_b, pad_r = (ws - h0 % ws) % ws, (ws - w0 % ws) % ws
        if pad_b or pad_r:
            xn = F.pad(xn, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h0 + pad_b, w0 + pad_r
        target = xn[:, -1]
        pooled_target = _pool_windows(target, ws, self.pool_layers[0])
        pooled_refs = []
        for k, lvl in enumerate(self.clip_levels):
            size = ws // lvl
            hk, wk = math.ceil(hp / ws) * lvl * size, math.ceil(wp / ws) * lvl * size
            ref = xn[:, k]
            if (hk, wk) != (hp, wp):
                ref = F.interpolate(
                    ref.permute(0, 3, 1, 2), size=(hk, wk), mode="bilinear", align_corners=False
                ).permute(0, 2, 3, 1)
            pooled_refs.append(_pool_windows(ref.contiguous(), size, self.pool_layers_clips[k]))
        out = self.attn(target, pooled_target, pooled_refs)  # (B·nW, ws², C)
        out = out.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        t = x[:, -1] + out[:, :h0, :w0]
        t = t + self.mlp(self.norm2(t))
        return torch.cat([x[:, :-1], t.unsqueeze(1)], 1)


class CFFMTransformer(nn.Module):
    """A stack of :class:`CFFMBlock` (the original ``BasicLayer3d3``, depth 2).

    Shape: ``(B, 4, C, h, w)`` → ``(B, 4, C, h, w)`` (only the last frame changes).
    """

    def __init__(self, dim: int = 256, depth: int = 2, heads: int = 8):
        super().__init__()
        self.blocks = nn.ModuleList(CFFMBlock(dim, heads) for _ in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 1, 3, 4, 2)
        for blk in self.blocks:
            x = blk(x)
        return x.permute(0, 1, 4, 2, 3)
