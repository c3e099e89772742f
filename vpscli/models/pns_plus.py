"""PNS+ (Ji et al., MIR 2022): PNS-Net with a global NS block whose queries come from an
anchor frame (the video's first frame) and a local NS block (spec §4).

Parameter names equal the official ``lib/module/PNSPlusNetwork.py`` so ``PNSPlus.pth``
loads (``module.`` prefixes stripped; unused ``squeeze``, ``layer4``, ``fc`` skipped).

Differences from the official code, none of which changes its outputs:

- the number of local frames is any T ≥ 1 (the official code hard-codes 5);
- the anchor's features are computed on the first step of a video and kept in the
  :class:`~vpscli.models.base.VideoState` instead of re-encoding frame 0 with every clip.
  In eval mode the anchor is encoded on its own (one frame, shared by a batch of clips of
  the same video), so a clip's output does not depend on which step carried the anchor —
  the same up to float rounding as the official joint batch, and bit-identical between a
  resumed and an uninterrupted run; in training mode it is encoded in the same backbone
  batch as the clip, as the official code does, so BatchNorm sees the same statistics;
- the global block's queries (one anchor frame repeated T times) are computed once and
  broadcast — its output is identical for all frames in the original too (spec §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from vpscli.models.backbone import DEFAULT_BACKBONE
from vpscli.models.base import PNS_MEAN, PNS_STD, ModelSpec, VideoState
from vpscli.models.ns import NSBlock
from vpscli.models.pns_net import PNSTrunk
from vpscli.models.registry import register_model

__all__ = ["PNSPlus", "PNSPlusState", "PNSPlusFeatures", "PNS_PLUS_SPEC"]

PNS_PLUS_SPEC = ModelSpec(
    name="pns-plus",
    title="PNS+ (MIR 2022): global (anchor) + local NS blocks, official weights importable (res2net50)",
    clip_length=5,
    input_size=(256, 448),
    fixed_input_size=True,
    mean=PNS_MEAN,
    std=PNS_STD,
    needs_anchor=True,
    output_stride=8,
    state="anchor-frame features (first frame of the video)",
    official_weights=("PNSPlus.pth",),
)


@dataclass
class PNSPlusState(VideoState):
    """PNS+'s per-video state: the anchor frame's high-level features ``(B, 1, 32, h16, w16)``
    (``None`` until the first clip), shared by every clip of the video."""

    anchor: Tensor | None = None


class PNSPlusFeatures(NamedTuple):
    """Per-frame intermediates of the PNS+ forward, frames flattened into the batch (N = B·T)."""

    stages: list[Tensor]  #: layer1..layer3
    low: Tensor  #: ``(N, 24, h8, w8)``
    high: Tensor  #: after the NS blocks, ``(N, 32, h16, w16)``
    decoded: Tensor  #: ``(N, 16, h8, w8)``


@register_model(PNS_PLUS_SPEC, rank=40, key_prefix="NSB_global.")
class PNSPlus(PNSTrunk[PNSPlusState]):
    """PNS+ network.

    Args:
        input_size: network input ``(H, W)``; 256×448 for the official weights.
        out_channels: SegNIN output channels (1; the AEN uses q proposal maps).
        spec: override the spec (used by AEN+PNS+).
        backbone: ``res2net50`` (official weights) or ``efficientnet-lite2``.

    Shape:
        - clip: ``(B, T, 3, H, W)`` local frames (5 in the official setting).
        - anchor: ``(B, 3, H, W)`` or ``(1, 3, H, W)`` (one frame for every clip of the
          batch), first step of a video only.
        - Output: logits ``(B, T, 1, H, W)``.
    """

    state_type = PNSPlusState

    def __init__(
        self,
        input_size: tuple[int, int] = (256, 448),
        out_channels: int = 1,
        spec: ModelSpec | None = None,
        backbone: str = DEFAULT_BACKBONE,
    ):
        super().__init__(
            (spec or PNS_PLUS_SPEC).with_input_size(input_size).with_backbone(backbone), out_channels
        )
        size = self.ns_feature_size
        self.NSB_global = NSBlock(32, size, dilation=(3, 4, 3, 4))
        self.NSB_local = NSBlock(32, size, dilation=(1, 2, 1, 2))

    def features(self, clip: Tensor, state: PNSPlusState, anchor: Tensor | None) -> "PNSPlusFeatures":
        """Every intermediate the PNS+ forward computes (AEN+PNS+ reads them): :class:`PNSPlusFeatures`."""
        b, t = clip.shape[:2]
        frames = clip.flatten(0, 1)
        new_anchor = state.anchor is None
        if new_anchor:
            anchor = clip[:, 0] if anchor is None else anchor  # (B, 3, H, W) or one frame (1, 3, H, W)
            if self.training:
                # The anchor joins the clip's backbone batch, exactly as the official forward
                # does, so BatchNorm normalises anchor and clip with the same batch statistics.
                frames = torch.cat([anchor.expand(b, -1, -1, -1), frames], 0)
            else:
                # Alone, so that the clip's numbers never depend on whether this step also
                # carried the anchor: a resumed run (anchor + frames 15-19) then computes
                # frames 15-19 exactly as an uninterrupted one (frames 15-19 alone). Batched
                # matrix products are not bit-stable across batch sizes (MKL splits them by rows).
                state.backbone_frames += anchor.shape[0]
                state.anchor = self.encode_anchor(anchor).expand(b, -1, -1, -1, -1).contiguous()
        stages = self.encode_stages(frames)
        state.backbone_frames += frames.shape[0]
        low, high = self.Low_RFB(stages[1]), self.High_RFB(stages[2])
        if new_anchor and self.training:
            # This step keeps the gradient through the anchor; later steps reuse it detached.
            global_query = high[:b].unsqueeze(1)
            state.anchor = global_query.detach()
            stages, low, high = [s[b:] for s in stages], low[b:], high[b:]
        else:
            global_query = state.anchor
        local = high.view(b, t, *high.shape[1:])
        h1 = self.NSB_global(global_query.to(local.dtype), local) + local
        h2 = self.NSB_local(h1, h1) + h1
        high = (h2 + local).flatten(0, 1)
        decoded = self.decode(low, high)
        return PNSPlusFeatures(stages, low, high, decoded)

    def encode_anchor(self, anchor: Tensor) -> Tensor:
        """The global block's queries from the anchor frame: ``(B, 3, H, W)`` → ``(B, 1, 32, h16, w16)``."""
        return self.High_RFB(self.encode_stages(anchor)[2]).unsqueeze(1)

    def coarse_step(
        self, clip: Tensor, state: PNSPlusState, indices: list[int], anchor: Tensor | None
    ) -> Tensor:
        b, t = clip.shape[:2]
        logits = self.SegNIN(self.features(clip, state, anchor).decoded)
        return logits.view(b, t, *logits.shape[1:])
