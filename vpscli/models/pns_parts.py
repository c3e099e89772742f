"""Decoder pieces shared verbatim by PNS-Net and PNS+ (spec §1.3).

Class and attribute names follow the official ``LightRFB.py`` / ``PNSPlusNetwork.py`` so that
official state-dict keys (``High_RFB.br1.2.conv.weight``, ``decoder.up2_high.conv0.weight``,
…) map one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HSigmoid", "SELayer", "BasicConv", "LightRFB", "DilatedParallelConvBlockD2", "PNSDecoder"]


class HSigmoid(nn.Module):
    """Hard sigmoid ``ReLU6(x + 3) / 6``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x + 3.0) / 6.0


class SELayer(nn.Module):
    """Squeeze-and-excitation gate with a hard sigmoid (``fc.0``, ``fc.2`` are the Linears).

    Shape: ``(N, C, H, W)`` → ``(N, C, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            HSigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.fc(x.mean(dim=(2, 3)))
        return x * y[:, :, None, None]


class BasicConv(nn.Module):
    """Bias-free conv → BN(eps 1e-5, momentum 0.01) → optional PReLU (one shared slope)."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        relu: bool = True,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_planes, out_planes, kernel_size, padding=padding, dilation=dilation, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01)
        self.relu = nn.PReLU() if relu else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


def _depthwise(channels: int, kernel: int, dilation: int = 1) -> BasicConv:
    return BasicConv(
        channels,
        channels,
        kernel,
        padding=dilation * (kernel // 2),
        dilation=dilation,
        groups=channels,
        relu=False,
    )


class LightRFB(nn.Module):
    """Light receptive-field block: SE gate, 1×1 reduction, four depthwise branches with
    growing dilation, and a 1×1 fusion of the (un-gated) input with the branches.

    Args:
        channels_in: C_in (1024 for ``High_RFB`` on layer3, 512 for ``Low_RFB`` on layer2).
        channels_mid: 128.
        channels_out: 32 (high) or 24 (low).

    Shape: ``(N, C_in, H, W)`` → ``(N, C_out, H, W)``.
    """

    def __init__(self, channels_in: int = 1024, channels_mid: int = 128, channels_out: int = 32):
        super().__init__()
        m = channels_mid
        self.global_se = SELayer(channels_in)
        self.reduce = nn.Sequential(nn.Conv2d(channels_in, m, 1, bias=False), nn.BatchNorm2d(m), nn.PReLU(m))
        self.br0 = nn.Sequential(BasicConv(m, m, 1), _depthwise(m, 3))
        self.br1 = nn.Sequential(_depthwise(m, 3), BasicConv(m, m, 1), _depthwise(m, 3, dilation=3))
        self.br2 = nn.Sequential(_depthwise(m, 5), BasicConv(m, m, 1), _depthwise(m, 3, dilation=5))
        self.br3 = nn.Sequential(_depthwise(m, 7), BasicConv(m, m, 1), _depthwise(m, 3, dilation=7))
        self.point_global = BasicConv(m * 4 + channels_in, channels_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        r = self.reduce(self.global_se(x))
        return self.point_global(torch.cat([x, self.br0(r), self.br1(r), self.br2(r), self.br3(r)], dim=1))


class DilatedParallelConvBlockD2(nn.Module):
    """1×1 conv, then half the channels through a 3×3 conv and half through a 3×3 conv with
    dilation 2, concatenated, BN. No activation.

    Shape: ``(N, n_in, H, W)`` → ``(N, n_out, H, W)``.
    """

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        n1 = int(math.ceil(n_out / 2.0))
        n2 = n_out - n1
        self.split = (n1, n2)
        self.conv0 = nn.Conv2d(n_in, n_out, 1, bias=False)
        self.conv1 = nn.Conv2d(n1, n1, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(n2, n2, 3, padding=2, dilation=2, bias=False)
        self.bn = nn.BatchNorm2d(n_out)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.conv0(x).split(self.split, dim=1)
        return self.bn(torch.cat([self.conv1(a), self.conv2(b)], dim=1))


class PNSDecoder(nn.Module):
    """The official ``conbine_feature``: fuse the high-level (32 ch, upsampled to the low
    map) and low-level (24 ch) features into a 16-channel map at stride 8.

    Shape:
        - low: ``(N, 24, h8, w8)``; high: ``(N, 32, h8, w8)`` (already upsampled).
        - Output: ``(N, 16, h8, w8)``.
    """

    def __init__(self):
        super().__init__()
        self.up2_high = DilatedParallelConvBlockD2(32, 16)
        self.up2_low = nn.Conv2d(24, 16, 1, bias=False)
        self.up2_bn2 = nn.BatchNorm2d(16)
        self.up2_act = nn.PReLU(16)
        self.refine = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.PReLU()
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return self.refine(self.up2_act(self.up2_high(high) + self.up2_bn2(self.up2_low(low))))
