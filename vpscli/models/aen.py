"""AEN, the appearance-embedding network of Fang et al. (AAAI 2024, "An embedding-unleashing
video polyp segmentation framework via region linking and scale alignment"), on a CFFM or
PNS+ proposal network (PGN).

This follows the **paper**, equations (1)–(9), not the published EUVPS code (which does not
run and, repaired, reduces to one scalar gain per window; spec §6). Notation: clip length
L = 3, classes c = 1, region maps per scale S = 50, proposals q = 4S = 200, embedding D = 256,
memory m = 3 clips, alignment iterations 3.

1. **PGN** (eq. 2): the proposal network emits ``e1``: q proposal maps per frame at
   stride 4, ``(B, L, q, H/4, W/4)``. It also exposes stage features F'_1..F'_4.
2. **CRL** (eqs. 4–5), per scale i: F'_i is added to the backbone stage feature F_i, a 1×1
   conv maps to the class dimension (c·S region maps), two 3×3 convs share spatial
   information, and an MLP (H_i·W_i → D → D → D) embeds each flattened region map; the four
   scales are concatenated into ``e2``: ``(B, L, c·q, D)``.
3. **CSA** (eqs. 6–8, :mod:`vpscli.models.aen_csa`): Transformer encoder, pixel decoder and
   decoder over the clip's tokens, the clip-level memory read (eq. 7, against the last m
   clips), then 3 alignment iterations → ``e3``.
4. **Interaction** (eq. 9): ``P = σ(Σ_q Σ_d e1[q]·e3[c, q, d])`` at stride 4, upsampled to
   the input (logits are returned; the sigmoid is the caller's).

Choices where the paper is silent (CSA's in :mod:`vpscli.models.aen_csa`, the rest per class below):

- "Add F'_i to F_i, then a 1×1 conv" with different channel counts (CFFM's stage features
  have 256 channels, Res2Net's 256…2048) is implemented as two 1×1 convs summed, one per
  input: identical to mapping F'_i into F_i's space and adding before one conv, without
  building that C_i-wide map. F'_i is bilinearly resized to F_i's size when they differ.
- Region convs: 3×3 conv + BatchNorm + ReLU, twice; region MLP with ReLU between layers.
- CSA's widths (8 heads, FFN 512, one encoder and one decoder layer) put the AEN at ≈ 8.4 M
  parameters on CFFM and ≈ 8.1 M on PNS+ (the paper's Table 4: +7.32 M and +8.92 M); see
  ``tests/test_models.py`` for the totals.
- Memory (eq. 7): the memory holds e3 of the last m clips (detached).
- Interaction: the literal eq. 9 multiplied by the constant ``1/√(q·D)`` (no parameter) so
  that logits start at O(1); ``interaction_scale=1.0`` gives the literal sum.
- e3 has no final LayerNorm: with one, Σ_d e3 would be the LayerNorm bias sum at
  initialisation, blocking the gradient to the PGN's proposals.

Memory is carried from clip to clip through a video in the
:class:`~vpscli.models.base.VideoState` and reset by ``init_state()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpscli.models.aen_csa import CSA
from vpscli.models.backbone import DEFAULT_BACKBONE, stage_sizes
from vpscli.models.base import ModelSpec, VideoModel
from vpscli.models.cffm import CFFM, CFFM_SPEC, CFFMState
from vpscli.models.pns_plus import PNS_PLUS_SPEC, PNSPlus, PNSPlusFeatures, PNSPlusState
from vpscli.models.registry import register_model

__all__ = [
    "CRLStage",
    "CRL",
    "AEN",
    "AENCFFM",
    "AENPNSPlus",
    "AENCFFMState",
    "AENPNSPlusState",
    "AEN_CFFM_SPEC",
    "AEN_PNS_PLUS_SPEC",
]

AEN_CFFM_SPEC = ModelSpec(
    name="aen-cffm",
    title="AEN (CRL + CSA, AAAI 2024) on a CFFM proposal network",
    clip_length=3,
    max_clip_length=3,
    input_size=(320, 448),
    fixed_input_size=True,
    ref_offsets=(-9, -6, -3),
    memory_clips=3,
    output_stride=4,
    state="AEN memory of the last 3 clips + CFFM feature cache of the last 9 frames",
)

AEN_PNS_PLUS_SPEC = ModelSpec(
    name="aen-pns-plus",
    title="AEN (CRL + CSA, AAAI 2024) on a PNS+ proposal network",
    clip_length=3,
    max_clip_length=3,
    input_size=(320, 448),
    fixed_input_size=True,
    needs_anchor=True,
    memory_clips=3,
    output_stride=4,
    state="AEN memory of the last 3 clips + PNS+ anchor features",
)


class CRLStage(nn.Module):
    """Cross-scale region linking for one scale (eq. 4).

    Args:
        backbone_channels: channels of F_i.
        pgn_channels: channels of the PGN's stage feature F'_i.
        regions: region maps c·S (50).
        map_size: ``(h_i, w_i)`` of F_i (fixes the MLP's input width).
        dim: embedding D (256).

    Shape:
        - backbone: ``(N, C_i, h_i, w_i)``; pgn: ``(N, C'_i, h', w')`` (resized to h_i×w_i).
        - Output: ``(N, c·S, D)``.
    """

    def __init__(
        self,
        backbone_channels: int,
        pgn_channels: int,
        regions: int,
        map_size: tuple[int, int],
        dim: int = 256,
    ):
        super().__init__()
        if regions < 1 or min(map_size) < 1:
            raise ValueError(f"regions and map size must be positive, got {regions} and {tuple(map_size)}")
        self.map_size = tuple(map_size)
        self.regions = regions
        self.backbone_proj = nn.Conv2d(backbone_channels, regions, 1)
        self.pgn_proj = nn.Conv2d(pgn_channels, regions, 1, bias=False)
        self.share = nn.Sequential(
            nn.Conv2d(regions, regions, 3, padding=1, bias=False),
            nn.BatchNorm2d(regions),
            nn.ReLU(inplace=True),
            nn.Conv2d(regions, regions, 3, padding=1, bias=False),
            nn.BatchNorm2d(regions),
            nn.ReLU(inplace=True),
        )
        self.mlp = nn.Sequential(
            nn.Linear(map_size[0] * map_size[1], dim),
            nn.ReLU(inplace=True),
            nn.Linear(dim, dim),
            nn.ReLU(inplace=True),
            nn.Linear(dim, dim),
        )

    def extra_repr(self) -> str:
        return f"regions={self.regions}, map_size={self.map_size}, dim={self.mlp[-1].out_features}"

    def resize_map_weights(self, state: dict[str, Tensor], prefix: str, from_map: tuple[int, int]) -> None:
        """Resize, in ``state``, the first MLP layer's weight trained on ``from_map`` maps to this stage's.

        The layer holds one input column per map position, flattened; each output's row is resized as an
        ``h×w`` map, bilinearly, and scaled by the ratio of position counts, so that its response to a
        smooth region map stays what it was (the sum runs over more or fewer positions)."""
        key = prefix + "mlp.0.weight"
        weight = state.get(key)
        h, w = self.map_size
        old = from_map[0] * from_map[1]
        if weight is None or weight.ndim != 2 or weight.shape[1] != old or tuple(from_map) == self.map_size:
            return
        maps = weight.float().reshape(weight.shape[0], 1, *from_map)
        resized = F.interpolate(maps, size=self.map_size, mode="bilinear", align_corners=False)
        state[key] = (resized * (old / (h * w))).reshape(weight.shape[0], h * w).to(weight.dtype)

    def forward(self, backbone: Tensor, pgn: Tensor) -> Tensor:
        if pgn.shape[-2:] != backbone.shape[-2:]:
            pgn = F.interpolate(pgn, size=backbone.shape[-2:], mode="bilinear", align_corners=False)
        regions = self.share(self.backbone_proj(backbone) + self.pgn_proj(pgn))
        if tuple(regions.shape[-2:]) != self.map_size:
            raise ValueError(f"CRL was built for {self.map_size} maps, got {tuple(regions.shape[-2:])}")
        return self.mlp(regions.flatten(2))


class CRL(nn.Module):
    """All four scales of region linking, concatenated (eq. 5).

    Shape: lists of 4 ``(N, C_i, ·)`` and ``(N, C'_i, ·)`` → ``e2`` ``(N, c·q, D)`` with tokens
    ordered (class, scale, region).
    """

    def __init__(
        self,
        backbone_channels: Sequence[int],
        pgn_channels: Sequence[int],
        map_sizes: Sequence[tuple[int, int]],
        classes: int = 1,
        regions: int = 50,
        dim: int = 256,
    ):
        super().__init__()
        if not len(backbone_channels) == len(pgn_channels) == len(map_sizes) == 4:
            raise ValueError(
                "CRL links four scales: backbone_channels, pgn_channels and map_sizes need 4 entries each"
            )
        self.classes, self.regions = classes, regions
        self.stages = nn.ModuleList(
            CRLStage(cb, cp, classes * regions, size, dim)
            for cb, cp, size in zip(backbone_channels, pgn_channels, map_sizes)
        )

    def extra_repr(self) -> str:
        return f"classes={self.classes}, regions={self.regions}, scales={len(self.stages)}"

    def resize_positions(self, state: dict[str, Tensor], prefix: str, input_size: tuple[int, int]) -> None:
        """Resize, in ``state``, the region MLPs' per-position weights trained at ``input_size`` ``(H, W)``
        to this model's maps (fine-tuning at a new size); see :meth:`CRLStage.resize_map_weights`."""
        for i, old in enumerate(stage_sizes(*input_size)):
            stage = cast(CRLStage, self.stages[i])
            stage.resize_map_weights(state, f"{prefix}stages.{i}.", old)

    def forward(self, backbone: Sequence[Tensor], pgn: Sequence[Tensor]) -> Tensor:
        per_scale = [stage(f, fp) for stage, f, fp in zip(self.stages, backbone, pgn)]
        n, _, d = per_scale[0].shape
        e2 = torch.stack([p.view(n, self.classes, self.regions, d) for p in per_scale], 2)  # N, c, 4, S, D
        return e2.reshape(n, -1, d)


class AEN(nn.Module):
    """CRL + CSA + the parameter-free interaction (eq. 9).

    Args:
        backbone_channels, pgn_channels: channels of F_1..F_4 and F'_1..F'_4.
        map_sizes: sizes of F_1..F_4 at the model's input size.
        classes c (1), regions S (50), dim D (256), clip_length L (3), memory_clips m (3).
        interaction_scale: constant factor of eq. 9 (default ``1/√(q·D)``).

    Shape:
        - backbone, pgn: per scale ``(B·L, C, h, w)``.
        - proposals e1: ``(B, L, q, h4, w4)``.
        - Output: logits ``(B, L, c, h4, w4)``; the state's memory gets this clip's e3.
    """

    def __init__(
        self,
        backbone_channels: Sequence[int],
        pgn_channels: Sequence[int],
        map_sizes: Sequence[tuple[int, int]],
        classes: int = 1,
        regions: int = 50,
        dim: int = 256,
        clip_length: int = 3,
        memory_clips: int = 3,
        interaction_scale: float | None = None,
        **csa_kw,
    ):
        super().__init__()
        self.classes, self.proposals = classes, 4 * regions
        self.memory_clips = memory_clips
        self.interaction_scale = (
            (1.0 / math.sqrt(self.proposals * dim)) if interaction_scale is None else float(interaction_scale)
        )
        self.crl = CRL(backbone_channels, pgn_channels, map_sizes, classes, regions, dim)
        self.csa = CSA(classes * self.proposals, clip_length, dim, **csa_kw)

    def forward(
        self,
        backbone: Sequence[Tensor],
        pgn: Sequence[Tensor],
        proposals: Tensor,
        state: AENCFFMState | AENPNSPlusState,
    ) -> Tensor:
        memory = torch.cat(state.memory, 1) if state.memory else None
        logits, e3 = self.interact(backbone, pgn, proposals, memory)
        state.memory = (state.memory + [e3.detach()])[-self.memory_clips :] if self.memory_clips else []
        return logits

    def interact(
        self,
        backbone: Sequence[Tensor],
        pgn: Sequence[Tensor],
        proposals: Tensor,
        memory: Tensor | None,
        valid: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The step on explicit tensors: ``(logits (B, L, c, h4, w4), e3 (B, L, c·q, D))`` for a
        memory ``(B, M, c·q, D)`` of earlier clips' e3 (``None``: none yet; ``valid (B, M)`` marks
        filled slots of a fixed-size memory, as exported graphs keep it)."""
        b, l = proposals.shape[:2]
        e2 = self.crl(backbone, pgn)
        e2 = e2.view(b, l, *e2.shape[1:])
        e3 = self.csa(e2, memory, valid)
        mixed = e3.view(b, l, self.classes, self.proposals, -1)
        logits = torch.einsum("blqhw,blcqd->blchw", proposals, mixed.to(proposals.dtype))
        return logits * self.interaction_scale, e3


@dataclass
class AENCFFMState(CFFMState):
    """AEN+CFFM's per-video state: the CFFM feature cache and the AEN memory, the embeddings of the
    last ``memory_clips`` clips, each ``(B, L, c·q, D)``, detached (no gradient flows into earlier clips)."""

    memory: list[Tensor] = field(default_factory=list)


@dataclass
class AENPNSPlusState(PNSPlusState):
    """AEN+PNS+'s per-video state: the PNS+ anchor and the AEN memory (as :class:`AENCFFMState`'s)."""

    memory: list[Tensor] = field(default_factory=list)


@register_model(AEN_CFFM_SPEC, rank=10, key_prefix="pgn.decode_head.")
class AENCFFM(VideoModel[AENCFFMState]):
    """AEN on a CFFM proposal network (the paper's headline model).

    The PGN is :class:`~vpscli.models.cffm.CFFM` with q = 200 output maps (``pgn.*`` keys); its
    stage features F' are the all-MLP decoder's per-stage embeddings (256 channels each).
    CFFM's reference frames t−9, t−6, t−3 come from the per-video feature cache in the state
    (earlier frames); training samples them with the clip (pass them as earlier frames of a
    clip, or run the clip after them with the same state).

    Args:
        input_size: ``(H, W)``; the region MLPs fix it (320×448 in the paper).
        backbone: ``res2net50`` or ``efficientnet-lite2`` (the CFFM's; CRL takes its channels).
        **aen_kw: options of :class:`AEN` (``regions``, ``interaction_scale``, ``ffn``, …).

    Shape: clip ``(B, T ≤ 3, 3, H, W)`` → logits ``(B, T, 1, H, W)``.
    """

    state_type = AENCFFMState

    def __init__(self, input_size: tuple[int, int] = (320, 448), backbone: str = DEFAULT_BACKBONE, **aen_kw):
        super().__init__(AEN_CFFM_SPEC.with_input_size(input_size).with_backbone(backbone))
        regions = aen_kw.get("regions", 50)
        self.pgn = CFFM(input_size, out_channels=4 * regions, spec=CFFM_SPEC, backbone=backbone)
        self.aen = AEN(
            self.pgn.backbone.out_channels,
            (256,) * 4,
            stage_sizes(*input_size),
            clip_length=self.spec.clip_length,
            memory_clips=self.spec.memory_clips,
            **aen_kw,
        )

    def coarse_step(
        self, clip: Tensor, state: AENCFFMState, indices: list[int], anchor: Tensor | None
    ) -> Tensor:
        b, t = clip.shape[:2]
        enc = self.pgn.encode(clip, state)
        e1 = self.pgn.predict(enc, state, indices, b)
        return self.aen(enc.stages, enc.embeds, e1.view(b, t, *e1.shape[1:]), state)


@register_model(AEN_PNS_PLUS_SPEC, rank=20, key_prefix="pgn.NSB_global.")
class AENPNSPlus(VideoModel[AENPNSPlusState]):
    """AEN on a PNS+ proposal network (spec §7, adapted to the paper's parameter count).

    The PGN is :class:`~vpscli.models.pns_plus.PNSPlus` with q = 200 SegNIN outputs (``pgn.*``
    keys), anchor + L local frames. e1 = SegNIN logits at stride 8, bilinearly upsampled to
    stride 4.

    Scales (a choice): PNS+ never runs Res2Net's layer4, and computing it would add 15.0 M
    parameters PNS+ never trained — the model would have ≈ 33 M parameters, far from the
    paper's 18.71 M, which shows the paper did not use it either. So F_4 is layer3
    average-pooled to stride 32 (same size as layer4 would be). Backbone features
    F = (layer1, layer2, layer3, pooled layer3); PGN stage features F' = (decoder output
    16 ch at stride 8, Low_RFB 24 ch, NS-refined High_RFB 32 ch, the same pooled).

    Args:
        input_size: ``(H, W)`` (320×448 as in the paper; the NS LayerNorm and the region
            MLPs follow it, so official PNS+ weights do not load here unchanged).
        backbone: ``res2net50`` or ``efficientnet-lite2`` (F = its three stages + the pooled third).

    Shape: clip ``(B, T ≤ 3, 3, H, W)`` (+ anchor on the first step) → logits ``(B, T, 1, H, W)``.
    """

    state_type = AENPNSPlusState

    def __init__(self, input_size: tuple[int, int] = (320, 448), backbone: str = DEFAULT_BACKBONE, **aen_kw):
        super().__init__(AEN_PNS_PLUS_SPEC.with_input_size(input_size).with_backbone(backbone))
        regions = aen_kw.get("regions", 50)
        self.pgn = PNSPlus(input_size, out_channels=4 * regions, spec=PNS_PLUS_SPEC, backbone=backbone)
        c1, c2, c3 = self.pgn.feature_extractor.out_channels
        self.aen = AEN(
            (c1, c2, c3, c3),
            (16, 24, 32, 32),
            stage_sizes(*input_size),
            clip_length=self.spec.clip_length,
            memory_clips=self.spec.memory_clips,
            **aen_kw,
        )

    def coarse_step(
        self, clip: Tensor, state: AENPNSPlusState, indices: list[int], anchor: Tensor | None
    ) -> Tensor:
        b, t = clip.shape[:2]
        backbone, pgn, e1 = self.aen_inputs(self.pgn.features(clip, state, anchor), b, t)
        return self.aen(backbone, pgn, e1, state)

    def aen_inputs(self, f: PNSPlusFeatures, b: int, t: int) -> tuple[list[Tensor], list[Tensor], Tensor]:
        """The AEN's inputs from the PGN's intermediates: backbone features F, PGN features F' and the
        proposals e1 ``(B, T, q, h4, w4)``."""
        x1, x2, x3 = f.stages
        x4 = F.avg_pool2d(x3, 2, ceil_mode=True)
        high4 = F.avg_pool2d(f.high, 2, ceil_mode=True)
        e1 = F.interpolate(
            self.pgn.SegNIN(f.decoded), size=x1.shape[-2:], mode="bilinear", align_corners=False
        )
        return [x1, x2, x3, x4], [f.decoded, f.low, f.high, high4], e1.view(b, t, *e1.shape[1:])
