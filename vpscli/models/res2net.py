"""Res2Net-50 v1b (26w×4s), the papers' backbone (``res2net50``, random initialisation).

The module tree and parameter names are those of the Res2Net authors' ``Res2Net_v1b.py``
(as vendored by PNS-Net, PNS+ and EUVPS), so ImageNet and PNS checkpoints load without
renaming. The classifier (``avgpool``/``fc``) is not built: no model uses it, and
:func:`vpscli.models.checkpoint.load_checkpoint` tolerates its keys. ``layer4`` is
optional because PNS-Net and PNS+ never run it.

Shapes for an input of ``N×3×H×W`` (s = ⌈·⌉ of the stride division):

=========  ===========  ==========
output     channels     size
=========  ===========  ==========
layer1     256          ⌈H/4⌉×⌈W/4⌉
layer2     512          ⌈H/8⌉×⌈W/8⌉
layer3     1024         ⌈H/16⌉×⌈W/16⌉
layer4     2048         ⌈H/32⌉×⌈W/32⌉
=========  ===========  ==========
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Bottle2neck", "Res2NetV1b", "STAGE_CHANNELS", "stage_sizes"]

#: Output channels of layer1..layer4.
STAGE_CHANNELS = (256, 512, 1024, 2048)


def stage_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sizes of layer1..layer4 for an ``height×width`` input (strides 4, 8, 16, 32).

    Every stride-2 step of the network (convs with padding 1, the max-pool, the
    ``ceil_mode`` average pools) rounds up, so the stride-s size is ⌈size / s⌉.
    """
    return [(math.ceil(height / s), math.ceil(width / s)) for s in (4, 8, 16, 32)]


class Bottle2neck(nn.Module):
    """Res2Net bottleneck: 1×1 conv, a hierarchy of ``scale − 1`` 3×3 convs over channel
    groups, 1×1 conv, residual.

    Args:
        inplanes: input channels.
        planes: bottleneck planes; the output has ``planes * 4`` channels.
        stride: stride of the 3×3 convs (and of the pass-through group's average pool).
        downsample: shortcut projection, or ``None`` for the identity.
        base_width: 26 (the "26w" of 26w×4s).
        scale: 4 (the "4s").
        stage: ``True`` for the first block of a stage: groups are processed
            independently and the last group is average-pooled instead of passed through.

    Shape:
        - Input: ``(N, inplanes, H, W)``
        - Output: ``(N, planes·4, ⌈H/stride⌉, ⌈W/stride⌉)``
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        base_width: int = 26,
        scale: int = 4,
        stage: bool = False,
    ):
        super().__init__()
        width = int(math.floor(planes * (base_width / 64.0)))
        self.conv1 = nn.Conv2d(inplanes, width * scale, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.nums = max(scale - 1, 1)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
            for _ in range(self.nums)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(self.nums))
        # The pool has no parameters; it is only used by "stage" blocks.
        self.pool = nn.AvgPool2d(kernel_size=3, stride=stride, padding=1) if stage else None
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stage = stage
        self.scale = scale
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        groups = torch.split(out, self.width, 1)
        pieces = []
        sp = groups[0]
        for i in range(self.nums):
            if i > 0:
                sp = groups[i] if self.stage else sp + groups[i]
            sp = self.relu(self.bns[i](self.convs[i](sp)))
            pieces.append(sp)
        if self.scale != 1:
            last = groups[self.nums]
            pieces.append(self.pool(last) if self.pool is not None else last)
        out = self.bn3(self.conv3(torch.cat(pieces, 1)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Res2NetV1b(nn.Module):
    """Res2Net-50 v1b 26w×4s feature extractor (deep "v1b" stem, [3, 4, 6, 3] blocks).

    Args:
        with_layer4: build and run ``layer4`` (15.0 M parameters). PNS-Net and PNS+ do not.

    Shape:
        - Input: ``(N, 3, H, W)``, normalised RGB.
        - Output: list of stage features ``[layer1, layer2, layer3(, layer4)]``, see the
          module docstring.
    """

    def __init__(self, with_layer4: bool = True, layers: tuple[int, int, int, int] = (3, 4, 6, 3)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, 1, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2) if with_layer4 else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def out_channels(self) -> tuple[int, ...]:
        return STAGE_CHANNELS if self.layer4 is not None else STAGE_CHANNELS[:3]

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        # Every stage (layer1 too: 64 → 256 channels) gets a projection shortcut.
        downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=1, bias=False),
            nn.BatchNorm2d(planes * 4),
        )
        layers = [Bottle2neck(self.inplanes, planes, stride, downsample=downsample, stage=True)]
        self.inplanes = planes * 4
        layers += [Bottle2neck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stem(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` → ``(N, 64, ⌈H/4⌉, ⌈W/4⌉)``."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: Tensor) -> list[Tensor]:
        x1 = self.layer1(self.stem(x))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        feats = [x1, x2, x3]
        if self.layer4 is not None:
            feats.append(self.layer4(x3))
        return feats
