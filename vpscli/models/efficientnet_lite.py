"""EfficientNet-Lite2 feature extractor (Tan & Le, ICML 2019; the "Lite" variants of the
TensorFlow model garden), written here from the architecture.

Lite differs from EfficientNet-B*: ReLU6 everywhere, no squeeze-and-excitation, and the stem
(32 channels) and head (1280) are not scaled. Lite2 is width 1.1 / depth 1.2 of the B0 layout;
the stage table below is what the ImageNet file ``efficientnet-lite2-9656183e.pth`` holds
(read off its tensor shapes). Parameter names (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2``) are that file's, so it
loads without renaming (:mod:`vpscli.models.pretrained`). The classifier (``_conv_head``,
``_bn1``, ``_fc``) is not built: no model uses it.

Convolutions pad like TensorFlow's ``SAME`` (stride-2 layers pad one pixel more at the bottom
and right than at the top and left), because that is what the ImageNet weights were trained
with; every stride-2 layer therefore gives ⌈size / 2⌉, like Res2Net, and
:func:`vpscli.models.res2net.stage_sizes` holds for both backbones. BatchNorm uses
TensorFlow's ε = 10⁻³. Stochastic depth (the ImageNet recipe's drop-connect) is not built:
fine-tuning on a few thousand frames runs without it.

Shapes for an input of ``N×3×H×W``:

======  =========  ========  ==============
stage   blocks     channels  size
======  =========  ========  ==============
1       0–3        24        ⌈H/4⌉×⌈W/4⌉
2       4–6        48        ⌈H/8⌉×⌈W/8⌉
3       7–14       120       ⌈H/16⌉×⌈W/16⌉
4       15–20      352       ⌈H/32⌉×⌈W/32⌉
======  =========  ========  ==============
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LITE2_STAGES", "LITE2_STAGE_CHANNELS", "MBConv", "EfficientNetLite", "SameConv2d"]


class _Stage(NamedTuple):
    """One row of the EfficientNet stage table (the B0 layout scaled to Lite2)."""

    expand: int
    kernel: int
    stride: int
    channels_in: int
    channels_out: int
    repeats: int


#: Lite2's stages, from the ImageNet file's tensor shapes (B0's 1,2,2,3,3,4,1 repeats × 1.2,
#: rounded up; the first and last stages are never repeated in Lite).
LITE2_STAGES = (
    _Stage(1, 3, 1, 32, 16, 1),
    _Stage(6, 3, 2, 16, 24, 3),
    _Stage(6, 5, 2, 24, 48, 3),
    _Stage(6, 3, 2, 48, 88, 4),
    _Stage(6, 5, 1, 88, 120, 4),
    _Stage(6, 5, 2, 120, 208, 5),
    _Stage(6, 3, 1, 208, 352, 1),
)
#: Channels of the stride-4, -8, -16 and -32 features.
LITE2_STAGE_CHANNELS = (24, 48, 120, 352)
# Index of the table row whose last block ends each output stage (strides 4, 8, 16, 32).
_OUTPUT_ROWS = (1, 2, 4, 6)
_BN_EPS = 1e-3  # TensorFlow's, which the ImageNet statistics were estimated with
_BN_MOMENTUM = 0.01


class SameConv2d(nn.Conv2d):
    """Bias-free ``nn.Conv2d`` with TensorFlow ``SAME`` padding: output ⌈size / stride⌉; the
    odd pixel of padding goes to the bottom/right. Stride 1 pads ``kernel // 2`` on every side.

    Shape: ``(N, C_in, H, W)`` → ``(N, C_out, ⌈H/s⌉, ⌈W/s⌉)``.
    """

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(
            channels_in,
            channels_out,
            kernel,
            stride=stride,
            groups=groups,
            bias=False,
            padding=kernel // 2 if stride == 1 else 0,
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max(
                (math.ceil(size / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - size, 0
            )
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation: 1×1 expansion (absent when
    ``expand == 1``), k×k depthwise conv, 1×1 linear projection; ReLU6 after the first two;
    identity shortcut when the shape is kept.

    Shape: ``(N, C_in, H, W)`` → ``(N, C_out, ⌈H/stride⌉, ⌈W/stride⌉)``.
    """

    def __init__(self, channels_in: int, channels_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = channels_in * expand
        if expand != 1:
            self._expand_conv = SameConv2d(channels_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self._project_conv = SameConv2d(mid, channels_out, 1)
        self._bn2 = nn.BatchNorm2d(channels_out, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.expand = expand
        self.residual = stride == 1 and channels_in == channels_out

    def extra_repr(self) -> str:
        return f"expand={self.expand}, residual={self.residual}"

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite2 trunk returning the stride-4/8/16(/32) features.

    Args:
        stages: 4, or 3 to stop after the stride-16 stage (PNS-Net and PNS+ never use the
            stride-32 one; its blocks 15–20 are then not built).

    Shape:
        - Input: ``(N, 3, H, W)`` normalised as the ImageNet weights expect
          (``(rgb·255 − 127) / 128``, :data:`vpscli.models.backbone.LITE_MEAN`).
        - Output: ``[(N, 24, ⌈H/4⌉, ⌈W/4⌉), (N, 48, ⌈H/8⌉, ·), (N, 120, ⌈H/16⌉, ·)(, (N, 352, ⌈H/32⌉, ·))]``.
    """

    def __init__(self, stages: int = 4):
        super().__init__()
        if stages not in (3, 4):
            raise ValueError(f"stages must be 3 or 4, got {stages}")
        self.stages = stages
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        blocks, self._ends = [], []
        for row, st in enumerate(LITE2_STAGES[: _OUTPUT_ROWS[stages - 1] + 1]):
            for i in range(st.repeats):
                first = i == 0
                blocks.append(
                    MBConv(
                        st.channels_in if first else st.channels_out,
                        st.channels_out,
                        st.expand,
                        st.kernel,
                        st.stride if first else 1,
                    )
                )
            if row in _OUTPUT_ROWS:
                self._ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def out_channels(self) -> tuple[int, ...]:
        return LITE2_STAGE_CHANNELS[: self.stages]

    def extra_repr(self) -> str:
        return f"stages={self.stages}, out_channels={self.out_channels}"

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._ends:
                feats.append(x)
        return feats
