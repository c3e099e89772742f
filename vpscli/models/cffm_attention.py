"""The CFFM transformer's window attention (:class:`CFFMAttention`, the original ``WindowAttention3d3``):
the target frame's 7×7 windows attend to their own pixels, the 3-px ring around them, the pooled target
windows around them and each reference frame pooled at its granularity
(:mod:`vpscli.models.cffm_transformer`).

The attention's keys are assembled in one of two ways, chosen by whether a gradient is needed (as the NS
blocks' windows are, :mod:`vpscli.models.ns`): **windowed** (training) rolls, partitions and unfolds the
maps as the original does; **gathered** (inference and the exported graphs) reads every window's queries
and its 289 keys and values from one table of tokens with a constant index
(:func:`~vpscli.models.cffm_keys.window_key_index`; an all-zero row for unfold's padding). Both copy the
same numbers into the same order, so the attention's results are the same bit for bit in torch (tested). A converted graph runs the
gathers instead of about forty slow (reference) transposes, four rolls and two im2cols per block: the
aen-cffm-lite2 step on OpenVINO bf16, 3 frames of 320×224, 218 → 175 ms on one thread, 125 → 104 ms on two.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpscli.models.cffm_keys import (
    ring_positions,
    roll_shifts,
    window_key_index,
    window_positions,
)
from vpscli.models.gathered import constant_rows, gathering

__all__ = ["CFFMAttention"]


def _relative_position_index(q_size: int, k_size: int) -> Tensor:
    """Index into a ``(q_size + k_size − 1)²`` bias table for every (query, key) pair of a
    ``q_size²`` query window and a ``k_size²`` key window: ``(q², k²)`` long."""
    qc = torch.stack(torch.meshgrid(torch.arange(q_size), torch.arange(q_size), indexing="ij")).flatten(1)
    kc = torch.stack(torch.meshgrid(torch.arange(k_size), torch.arange(k_size), indexing="ij")).flatten(1)
    rel = (qc[:, :, None] - kc[:, None, :]).permute(1, 2, 0) + (k_size - 1)
    return rel[..., 0] * (q_size + k_size - 1) + rel[..., 1]


def _windows(x: Tensor, size: int) -> Tensor:
    """``(B, H, W, C)`` → ``(B·nWh·nWw, size², C)`` (row-major windows, H and W multiples of size)."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c)


def _unfold_tokens(x: Tensor, kernel: int, stride: int, heads: int) -> Tensor:
    """Neighbourhoods of a token map as attention keys.

    ``(B, C, h, w)`` → ``(B·L, heads, kernel², C/heads)`` with zero padding kernel//2 (L = number
    of output positions, row-major, matching the target's windows).
    """
    b, c = x.shape[:2]
    cols = F.unfold(x, kernel_size=kernel, stride=stride, padding=kernel // 2)  # B, C·k², L
    cols = cols.view(b, c, kernel * kernel, -1).permute(0, 3, 2, 1)  # B, L, k², C
    return cols.reshape(-1, kernel * kernel, heads, c // heads).transpose(1, 2)


def _padding_mask(h: int, w: int, kernel: int, stride: int, like: Tensor) -> Tensor:
    """−100 where an unfolded neighbourhood reads zero padding, else 0: ``(L, kernel²)``."""
    ones = like.new_ones(1, 1, h, w)
    cols = F.unfold(ones, kernel_size=kernel, stride=stride, padding=kernel // 2)[0].t()
    return (cols == 0).to(like.dtype) * -100.0


class CFFMAttention(nn.Module):
    """Window attention of the target frame over fine, pooled and reference tokens
    (the original ``WindowAttention3d3`` with focal level 2).

    Args:
        dim: channels E (256).
        heads: 8.
        window: 7.
        expand: ring width around each window (3).
        focal_window: neighbourhood of pooled target windows (5 → 25 tokens).
        clip_levels: granularity l per reference frame ([1, 2, 3]).
        clip_kernels: unfold kernel per reference frame ([7, 5, 3]).

    Shape:
        - target: ``(B, Hp, Wp, C)`` (Hp, Wp multiples of ``window``).
        - pooled_target: ``(B, Hp/7, Wp/7, C)``.
        - pooled_refs: per reference k, ``(B, l_k·Hp/7, l_k·Wp/7, C)``.
        - Output: ``(B·nW, window², C)``.
    """

    # non-persistent buffers (registered in __init__; relative_position_index_clips_i too)
    relative_position_index: Tensor
    relative_position_index_0: Tensor
    valid_ind_rolled: Tensor

    def __init__(
        self,
        dim: int = 256,
        heads: int = 8,
        window: int = 7,
        expand: int = 3,
        focal_window: int = 5,
        clip_levels: Sequence[int] = (1, 2, 3),
        clip_kernels: Sequence[int] = (7, 5, 3),
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        if len(clip_levels) != len(clip_kernels):
            raise ValueError(
                f"one unfold kernel per reference level: levels {tuple(clip_levels)}, "
                f"kernels {tuple(clip_kernels)}"
            )
        if not 0 < expand < window or not all(1 <= lvl <= window for lvl in clip_levels):
            raise ValueError(
                f"expand and every level must lie in 1 … window ({window}), "
                f"got expand {expand}, levels {tuple(clip_levels)}"
            )
        self.dim, self.heads, self.window, self.expand = dim, heads, window, expand
        self.focal_window = focal_window
        self.clip_levels, self.clip_kernels = tuple(clip_levels), tuple(clip_kernels)
        area = window * window
        # Bias tables (parameter names as in the original).
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        ring = 4 * area - 4 * (window - expand) ** 2
        self.relative_position_bias_table_to_neighbors = nn.Parameter(torch.zeros(1, heads, area, ring))
        self.relative_position_bias_table_to_windows = nn.ParameterList(
            [nn.Parameter(torch.zeros(heads, (window + focal_window - 1) ** 2))]
        )
        self.relative_position_bias_table_to_windows_clips = nn.ParameterList(
            [nn.Parameter(torch.zeros(heads, (window + k - 1) ** 2)) for k in self.clip_kernels]
        )
        for p in [
            self.relative_position_bias_table_to_neighbors,
            *self.relative_position_bias_table_to_windows,
            *self.relative_position_bias_table_to_windows_clips,
        ]:
            nn.init.trunc_normal_(p, std=0.02)
        self.register_buffer(
            "relative_position_index", _relative_position_index(window, window), persistent=False
        )
        self.register_buffer(
            "relative_position_index_0", _relative_position_index(window, focal_window), persistent=False
        )
        for i, k in enumerate(self.clip_kernels):
            self.register_buffer(
                f"relative_position_index_clips_{i}", _relative_position_index(window, k), persistent=False
            )
        # ring positions kept from the 4 diagonally rolled windows (those not already inside the window)
        self.register_buffer(
            "valid_ind_rolled", torch.from_numpy(ring_positions(window, expand)), persistent=False
        )
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.heads}, window={self.window}, expand={self.expand}, "
            f"focal_window={self.focal_window}, clip_levels={self.clip_levels}, clip_kernels={self.clip_kernels}"
        )

    def _bias(self) -> Tensor:
        """Relative-position biases for all key groups: ``(heads, window², N_keys)``."""
        area = self.window**2
        parts = [
            self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
            .view(area, area, -1)
            .permute(2, 0, 1),
            self.relative_position_bias_table_to_neighbors[0],
            self.relative_position_bias_table_to_windows[0][
                :, self.relative_position_index_0.reshape(-1)
            ].view(self.heads, area, -1),
        ]
        for i in range(len(self.clip_kernels)):
            index = getattr(self, f"relative_position_index_clips_{i}")
            parts.append(
                self.relative_position_bias_table_to_windows_clips[i][:, index.reshape(-1)].view(
                    self.heads, area, -1
                )
            )
        return torch.cat(parts, dim=-1)

    def forward(self, target: Tensor, pooled_target: Tensor, pooled_refs: Sequence[Tensor]) -> Tensor:
        # the same numbers either way (module doc): the windowed form for training, gathering otherwise
        attend = self._gathered if gathering() else self._windowed
        return attend(target, pooled_target, pooled_refs)

    def _groups(self, pooled_target: Tensor, pooled_refs: Sequence[Tensor]) -> list[tuple[Tensor, int, int]]:
        """The pooled token maps with their unfold kernel and stride: the target's windows (stride 1), then
        each reference at its granularity (stride l)."""
        return [(pooled_target, self.focal_window, 1)] + [
            (r, kern, lvl) for r, kern, lvl in zip(pooled_refs, self.clip_kernels, self.clip_levels)
        ]

    def _mask(self, target: Tensor, groups: list[tuple[Tensor, int, int]]) -> Tensor:
        """``(B·nW, 1, 1, N)``: −100 where a key is unfold's padding, else 0 (windows are batch-major)."""
        b, hp, wp = target.shape[:3]
        n_own = self.window**2 + self.valid_ind_rolled.shape[0]
        masks = [target.new_zeros((hp // self.window) * (wp // self.window), n_own)]
        masks += [
            _padding_mask(t.shape[1], t.shape[2], kernel, stride, target) for t, kernel, stride in groups
        ]
        return torch.cat(masks, 1).repeat(b, 1)[:, None, None, :]

    def _attend(self, q_win: Tensor, k_all: Tensor, v_all: Tensor, mask: Tensor) -> Tensor:
        """Attention of ``(B·nW, heads, window², hd)`` queries over ``(B·nW, heads, N, hd)`` keys and values,
        projected: ``(B·nW, window², C)``."""
        bias = self._bias().to(q_win.dtype)[None] + mask.to(q_win.dtype)
        out = F.scaled_dot_product_attention(q_win, k_all, v_all, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(out.shape[0], self.window**2, self.dim))

    def _gathered(self, target: Tensor, pooled_target: Tensor, pooled_refs: Sequence[Tensor]) -> Tensor:
        """Every window's queries and keys read from one token table by a constant index (module doc)."""
        b, hp, wp, c = target.shape
        heads, hd, area = self.heads, c // self.heads, self.window**2
        groups = self._groups(pooled_target, pooled_refs)
        own, keys = self._key_index((hp, wp), groups, target.device)
        n_win = own.shape[0] // area
        n_keys = keys.shape[0] // (n_win * heads)
        q, k, v = self.qkv(target).chunk(3, dim=-1)
        tables_k, tables_v = [k.reshape(b, hp * wp, c)], [v.reshape(b, hp * wp, c)]
        for tokens, _, _ in groups:
            _, kv_k, kv_v = self.qkv(tokens).chunk(3, dim=-1)
            tables_k.append(kv_k.reshape(b, -1, c))
            tables_v.append(kv_v.reshape(b, -1, c))
        zero = target.new_zeros(b, 1, c)

        def gather(tables: list[Tensor]) -> Tensor:  # → (B·nW, heads, N, hd), contiguous
            table = torch.cat(tables + [zero], 1)
            # head-major rows (B, heads·tokens, hd): the gathered rows land in the attention's layout, the
            # layout the windowed form's concatenation makes (no transpose of the 289 keys of every window)
            rows = table.view(b, -1, heads, hd).transpose(1, 2).reshape(b, -1, hd)
            return torch.index_select(rows, 1, keys).view(b * n_win, heads, n_keys, hd)

        q_win = torch.index_select(q.reshape(b, hp * wp, c), 1, own).view(b * n_win, area, heads, hd)
        return self._attend(
            q_win.transpose(1, 2), gather(tables_k), gather(tables_v), self._mask(target, groups)
        )

    def _key_index(
        self, size: tuple[int, int], groups: list[tuple[Tensor, int, int]], device
    ) -> tuple[Tensor, Tensor]:
        """The rows :meth:`_gathered` reads: ``(nW·window²,)`` of the target's map for the queries, and
        ``(nW·heads·N,)`` of the head-major token table for the keys and values
        (:func:`~vpscli.models.cffm_keys.window_key_index`,
        each head's copy of the table after the one before)."""
        # plain ints (a traced shape is a tensor): the rows are constants of the graph
        size = (int(size[0]), int(size[1]))
        shapes = tuple((int(t.shape[1]), int(t.shape[2]), kernel, stride) for t, kernel, stride in groups)

        def by_head() -> np.ndarray:
            index = window_key_index(size, self.window, self.expand, shapes)  # (nW, N)
            tokens = size[0] * size[1] + sum(h * w for h, w, _, _ in shapes) + 1
            return (index[:, None, :] + tokens * np.arange(self.heads)[None, :, None]).reshape(-1)

        config = (self.window, self.expand, self.heads)
        own = constant_rows(
            ("windows", *size, self.window), lambda: window_positions(*size, self.window).reshape(-1), device
        )
        return own, constant_rows(("keys", size, shapes, config), by_head, device)

    def _windowed(self, target: Tensor, pooled_target: Tensor, pooled_refs: Sequence[Tensor]) -> Tensor:
        """The original's rolls, window partitions and unfolds."""
        b, hp, wp, c = target.shape
        heads, hd, ws = self.heads, c // self.heads, self.window
        q, k, v = self.qkv(target).chunk(3, dim=-1)

        def heads_first(t: Tensor) -> Tensor:  # (B·nW, n, C) → (B·nW, heads, n, hd)
            return t.view(t.shape[0], t.shape[1], heads, hd).transpose(1, 2)

        q_win = heads_first(_windows(q, ws))
        keys, values = [heads_first(_windows(k, ws))], [heads_first(_windows(v, ws))]
        rolled_k, rolled_v = [], []
        for shift in roll_shifts(self.expand):
            rolled_k.append(_windows(torch.roll(k, shifts=shift, dims=(1, 2)), ws))
            rolled_v.append(_windows(torch.roll(v, shifts=shift, dims=(1, 2)), ws))
        keys.append(heads_first(torch.cat(rolled_k, 1)[:, self.valid_ind_rolled]))
        values.append(heads_first(torch.cat(rolled_v, 1)[:, self.valid_ind_rolled]))
        groups = self._groups(pooled_target, pooled_refs)
        for tokens, kernel, stride in groups:
            _, kv_k, kv_v = self.qkv(tokens).permute(0, 3, 1, 2).chunk(3, dim=1)
            keys.append(_unfold_tokens(kv_k.contiguous(), kernel, stride, heads))
            values.append(_unfold_tokens(kv_v.contiguous(), kernel, stride, heads))
        return self._attend(q_win, torch.cat(keys, 2), torch.cat(values, 2), self._mask(target, groups))
