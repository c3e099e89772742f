"""PNS-Net (Ji et al., MICCAI 2021): a backbone to stride 16 (Res2Net-50 to layer3 in the
paper), two LightRFBs, two NS blocks over a clip of frames, a small decoder (spec §2).

Parameter names equal the official ``lib/PNS_Network.py`` so ``PNS.pth`` and
``PNS-Finetune.pth`` load directly (their unused ``squeeze``, ``feature_extractor.layer4``
and ``feature_extractor.fc`` entries are skipped by the loader; they are not built here).
On ``efficientnet-lite2`` the LightRFBs take its 48 (stride 8) and 120 (stride 16) channels
instead of Res2Net's 512 and 1024; everything after them is the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpscli.models.backbone import DEFAULT_BACKBONE, build_backbone, stage_sizes
from vpscli.models.base import PNS_MEAN, PNS_STD, ModelSpec, StateT, VideoModel, VideoState
from vpscli.models.ns import NSBlock
from vpscli.models.pns_parts import LightRFB, PNSDecoder
from vpscli.models.registry import register_model

__all__ = ["PNSTrunk", "PNSNet", "PNS_NET_SPEC"]

PNS_NET_SPEC = ModelSpec(
    name="pns-net",
    title="PNS-Net (MICCAI 2021): NS blocks, official weights importable (res2net50)",
    clip_length=5,
    input_size=(256, 448),
    fixed_input_size=True,
    mean=PNS_MEAN,
    std=PNS_STD,
    output_stride=8,
    state="none (clips are independent)",
    official_weights=("PNS.pth", "PNS-Finetune.pth"),
)


class PNSTrunk(VideoModel[StateT]):
    """What PNS-Net and PNS+ share: backbone to stride 16, LightRFBs, decoder and SegNIN head.

    Args:
        spec: the model's spec (its ``input_size`` fixes the NS LayerNorm shape, its
            ``backbone`` the feature extractor and the RFBs' input channels).
        out_channels: channels of the SegNIN head (1; AEN+PNS+ uses q proposal maps).
    """

    def __init__(self, spec: ModelSpec, out_channels: int = 1):
        super().__init__(spec)
        self.feature_extractor = build_backbone(spec.backbone, stages=3)
        c1, c2, c3 = self.feature_extractor.out_channels
        self.High_RFB = LightRFB(c3, 128, 32)
        self.Low_RFB = LightRFB(c2, 128, 24)
        self.decoder = PNSDecoder()
        self.SegNIN = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(16, out_channels, kernel_size=1, bias=False))

    @property
    def ns_feature_size(self) -> tuple[int, int]:
        """``(h, w)`` of the stride-16 map the NS blocks work on (16×28 at 256×448)."""
        return stage_sizes(*self.spec.input_size)[2]

    def encode(self, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Backbone and RFBs for a batch of frames.

        Shape: ``(N, 3, H, W)`` → ``x1 (N, C1, H/4, W/4)`` (C1 = 256 on Res2Net, 24 on Lite2),
        ``low (N, 24, H/8, W/8)``, ``high (N, 32, H/16, W/16)``.
        """
        x1, x2, x3 = self.encode_stages(frames)
        return x1, self.Low_RFB(x2), self.High_RFB(x3)

    def encode_stages(self, frames: Tensor) -> list[Tensor]:
        """Backbone strides 4, 8, 16: ``(N, 3, H, W)`` → ``[(N, C_i, ·)]`` (Res2Net 256/512/1024, Lite2 24/48/120)."""
        return self.feature_extractor(frames.contiguous(memory_format=_memory_format(frames)))

    def decode(self, low: Tensor, high: Tensor) -> Tensor:
        """``low (N, 24, h8, w8)``, ``high (N, 32, h16, w16)`` → decoder map ``(N, 16, h8, w8)``."""
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.decoder(low, high)

    def forward_images(self, images: Tensor) -> Tensor:
        """Image mode (PNS-Net's pre-training stage): no NS blocks.

        Shape: ``(N, 3, H, W)`` → logits ``(N, 1, H, W)``: SegNIN's stride-8 logits upsampled (the
        official network applies the sigmoid after this upsampling, so these are its pre-sigmoid output).
        """
        _, low, high = self.encode(images)
        logits = self.SegNIN(self.decode(low, high))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def _memory_format(x: Tensor) -> torch.memory_format:
    # channels_last speeds up the backbone's convs on CUDA; on CPU it is neutral or slower.
    return torch.channels_last if x.is_cuda else torch.contiguous_format


@register_model(PNS_NET_SPEC, rank=50, key_prefix="NSB_1.")
class PNSNet(PNSTrunk[VideoState]):
    """PNS-Net: two NS self-attention blocks (dilations 1, 3, 5, 7) over the clip's
    stride-16 features.

    Args:
        input_size: network input ``(H, W)``; 256×448 for the official weights (the NS
            LayerNorm has the shape of the stride-16 map).
        backbone: ``res2net50`` (official weights) or ``efficientnet-lite2``.

    Shape:
        - clip: ``(B, T, 3, H, W)``, any T ≥ 1 (5 in training and in the official test).
        - Output: logits ``(B, T, 1, H, W)``.
    """

    def __init__(self, input_size: tuple[int, int] = (256, 448), backbone: str = DEFAULT_BACKBONE):
        super().__init__(PNS_NET_SPEC.with_input_size(input_size).with_backbone(backbone))
        size = self.ns_feature_size
        self.NSB_1 = NSBlock(32, size, dilation=(1, 3, 5, 7))
        self.NSB_2 = NSBlock(32, size, dilation=(1, 3, 5, 7))

    def coarse_step(
        self, clip: Tensor, state: VideoState, indices: list[int], anchor: Tensor | None
    ) -> Tensor:
        b, t = clip.shape[:2]
        _, low, high = self.encode(clip.flatten(0, 1))
        state.backbone_frames += b * t
        h = high.view(b, t, *high.shape[1:])
        h1 = self.NSB_1(h, h) + h
        h2 = self.NSB_2(h1, h1) + h1
        h = (h + h2).flatten(0, 1)
        logits = self.SegNIN(self.decode(low, h))
        return logits.view(b, t, *logits.shape[1:])
