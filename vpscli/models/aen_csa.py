"""CSA, the cross-wise scale alignment of the AEN (Fang et al., AAAI 2024, eqs. 6–8;
:mod:`vpscli.models.aen`): ``e_c = D2(e2, D1(E(e2)))`` — a Transformer encoder over the clip's
region tokens, a pixel decoder adding a learnable per-position embedding bias, a Transformer decoder
with e2 as queries; then the clip-level memory read (eq. 7) and 3 iterations of cross-attention (to
e_c) → self-attention over frames → FFN (eq. 8), giving ``e3``.

Choices where the paper is silent:

- Attention: 8 heads, pre-norm residual layers, FFN width 2D = 512; 1 encoder layer and 1
  decoder layer.
- Positions: a learned embedding per token (region index) and per frame, added to queries
  and keys of every attention (DETR style).
- Pixel decoder D1: ``LN(x) + MLP(LN(x)) + B`` with B a learned per-position (frame ×
  token) bias.
- Memory (eq. 7): for each token (frame l, index n) the read is
  ``Σ_j softmax_j(⟨W_q e_c[l,n], W_k M_j[n]⟩/√D) · W_v M_j[n]`` over every stored frame j of the
  same token index n, added to e_c. With an empty memory (first clip of a video) the read is skipped.
- Self-attention "over frames" (eq. 8): per token index, across the L frames of the clip.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CSA"]


class _Attention(nn.Module):
    """Pre-norm residual multi-head attention: ``x + MHA(LN(x) + pos, kv + kv_pos, kv)``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(
        self, x: Tensor, pos: Tensor, kv: Tensor | None = None, kv_pos: Tensor | None = None
    ) -> Tensor:
        q = self.norm(x)
        if kv is None:
            kv, kv_pos = q, pos
        elif kv_pos is None:
            raise ValueError("kv_pos is required with kv")
        return x + self.attn(q + pos, kv + kv_pos, kv, need_weights=False)[0]


class _FFN(nn.Module):
    """Pre-norm residual feed-forward: ``x + W2·ReLU(W1·LN(x))``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(F.relu(self.fc1(self.norm(x))))


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = _Attention(dim, heads)
        self.ffn = _FFN(dim, ffn)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        return self.ffn(self.self_attn(x, pos))


class _DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = _Attention(dim, heads)
        self.cross_attn = _Attention(dim, heads)
        self.ffn = _FFN(dim, ffn)

    def forward(self, x: Tensor, pos: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        return self.ffn(self.cross_attn(self.self_attn(x, pos), pos, memory, memory_pos))


class _PixelDecoder(nn.Module):
    """D1 of eq. 6: refines encoded tokens and adds a learnable per-position embedding bias.

    Shape: ``(B, L·N, D)`` → ``(B, L·N, D)`` for ``L ≤ clip_length``.
    """

    def __init__(self, dim: int, tokens: int, clip_length: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.position_bias = nn.Parameter(torch.zeros(clip_length * tokens, dim))
        nn.init.trunc_normal_(self.position_bias, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(x)
        return y + self.mlp(y) + self.position_bias[: x.shape[1]]


class _MemoryRead(nn.Module):
    """Eq. 7: softmax-normalised dot products with the memory of earlier clips.

    Shape: e_c ``(B, L, N, D)``, memory ``(B, M, N, D)`` (M stored frames), optional valid ``(B, M)``
    (1 for a stored frame, 0 for an empty slot) → ``(B, L, N, D)``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, e_c: Tensor, memory: Tensor, valid: Tensor | None = None) -> Tensor:
        q, k, v = self.query(e_c), self.key(memory.to(e_c.dtype)), self.value(memory.to(e_c.dtype))
        scores = torch.einsum("blnd,bmnd->blnm", q, k) / math.sqrt(q.shape[-1])
        if valid is None:
            return e_c + torch.einsum("blnm,bmnd->blnd", scores.softmax(-1), v)
        # A fixed-size memory with empty slots (exported graphs have fixed shapes): empty slots get no
        # weight, and an all-empty memory reads nothing, as when there is no memory yet.
        scores = scores + (valid[:, None, None, :].to(scores.dtype) - 1) * 1e9
        read = torch.einsum("blnm,bmnd->blnd", scores.softmax(-1), v)
        return e_c + valid.amax(1).view(-1, 1, 1, 1).to(read.dtype) * read


class _AlignLayer(nn.Module):
    """One iteration of eq. 8: cross-attention to e_c, self-attention over frames, FFN."""

    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.cross_attn = _Attention(dim, heads)
        self.frame_attn = _Attention(dim, heads)
        self.ffn = _FFN(dim, ffn)

    def forward(self, x: Tensor, pos: Tensor, e_c: Tensor, frame_pos: Tensor) -> Tensor:
        b, l, n, d = x.shape
        x = self.cross_attn(x.reshape(b, l * n, d), pos, e_c.reshape(b, l * n, d), pos)
        # frames as the sequence: (B·N, L, D)
        xf = x.view(b, l, n, d).transpose(1, 2).reshape(b * n, l, d)
        xf = self.frame_attn(xf, frame_pos[:l].unsqueeze(0))
        x = xf.view(b, n, l, d).transpose(1, 2)
        return self.ffn(x)


class CSA(nn.Module):
    """Cross-wise scale alignment (eqs. 6–8).

    Args:
        tokens: tokens per frame N = c·q (200).
        clip_length: L (3); clips of 1..L frames are accepted.
        dim, heads, ffn: D = 256, 8 heads, FFN width 512.
        encoder_layers, decoder_layers: 1 and 1.
        align_iterations: 3 (the paper's m in eq. 8).

    Shape:
        - e2: ``(B, L, N, D)``; memory: ``(B, M, N, D)`` or ``None``; valid: ``(B, M)`` marks the
          memory's filled slots (``None``: all).
        - Output: e3 ``(B, L, N, D)``.
    """

    def __init__(
        self,
        tokens: int = 200,
        clip_length: int = 3,
        dim: int = 256,
        heads: int = 8,
        ffn: int = 512,
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        align_iterations: int = 3,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        if min(tokens, clip_length, align_iterations) < 1:
            raise ValueError("tokens, clip_length and align_iterations must be at least 1")
        self.tokens, self.clip_length = tokens, clip_length
        self.token_pos = nn.Parameter(torch.zeros(tokens, dim))
        self.frame_pos = nn.Parameter(torch.zeros(clip_length, dim))
        nn.init.trunc_normal_(self.token_pos, std=0.02)
        nn.init.trunc_normal_(self.frame_pos, std=0.02)
        self.encoder = nn.ModuleList(_EncoderLayer(dim, heads, ffn) for _ in range(encoder_layers))
        self.pixel_decoder = _PixelDecoder(dim, tokens, clip_length)
        self.decoder = nn.ModuleList(_DecoderLayer(dim, heads, ffn) for _ in range(decoder_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.memory_read = _MemoryRead(dim)
        self.align = nn.ModuleList(_AlignLayer(dim, heads, ffn) for _ in range(align_iterations))

    def extra_repr(self) -> str:
        return (
            f"tokens={self.tokens}, clip_length={self.clip_length}, encoder_layers={len(self.encoder)}, "
            f"decoder_layers={len(self.decoder)}, align_iterations={len(self.align)}"
        )

    def forward(self, e2: Tensor, memory: Tensor | None, valid: Tensor | None = None) -> Tensor:
        b, l, n, d = e2.shape
        pos = (self.frame_pos[:l, None, :] + self.token_pos[None]).reshape(1, l * n, d)
        tokens = e2.reshape(b, l * n, d)
        enc = tokens
        for layer in self.encoder:
            enc = layer(enc, pos)
        mem = self.pixel_decoder(enc)
        x = tokens
        for layer in self.decoder:
            x = layer(x, pos, mem, pos)
        e_c = self.decoder_norm(x).view(b, l, n, d)
        e3 = e_c if memory is None else self.memory_read(e_c, memory, valid)
        for layer in self.align:
            e3 = layer(e3, pos, e_c, self.frame_pos)
        return e3
