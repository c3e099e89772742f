"""The backbone choice: every model of the zoo is built on one of these feature extractors.

A backbone maps ``(N, 3, H, W)`` normalised RGB to its stage features at strides 4, 8, 16
(and 32), a list of tensors of ``out_channels`` channels, each ⌈H/s⌉×⌈W/s⌉
(:func:`stage_sizes`). The model's name stays the architecture (``aen-cffm``, ``pns-plus``,
…); the backbone is an attribute of its :class:`~vpscli.models.base.ModelSpec`, recorded in
every checkpoint, and the necks take their input channels from it.

==================  ==================  ================  =============================
name                stage channels      normalisation     ImageNet weights
==================  ==================  ================  =============================
res2net50           256/512/1024/2048   the model's own   none installable (random init)
efficientnet-lite2  24/48/120/352       (x·255−127)/128   ``vps[train]`` extra
==================  ==================  ================  =============================

``res2net50`` is the papers' backbone and the default: official PNS-Net/PNS+ checkpoints
and the bundled weights load into it. ``efficientnet-lite2`` is what ``vps train`` can start
from ImageNet (:mod:`vpscli.models.pretrained`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vpscli.errors import UsageError
from vpscli.models.efficientnet_lite import LITE2_STAGE_CHANNELS, EfficientNetLite
from vpscli.models.res2net import STAGE_CHANNELS, Res2NetV1b, stage_sizes

__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneInfo",
    "BACKBONES",
    "LITE_MEAN",
    "LITE_STD",
    "available_backbones",
    "backbone_info",
    "build_backbone",
    "find_backbone",
    "stage_sizes",
    "STAGE_CHANNELS",
    "Res2NetV1b",
]

#: The backbone of a model built without naming one (and of checkpoints that do not record one).
DEFAULT_BACKBONE = "res2net50"

#: EfficientNet-Lite's input normalisation on the [0, 1] scale: TensorFlow's Lite recipe
#: feeds ``(pixel − 127) / 128`` (inception style, chosen there for post-training quantisation).
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class BackboneInfo:
    """What a model needs to know about a backbone.

    Attributes:
        name: the name used by ``--backbone`` and recorded in checkpoints.
        title: in words, for ``vps models``.
        stage_channels: channels of the stride-4, -8, -16, -32 features.
        mean, std: the input normalisation its ImageNet weights expect; ``None``: the model's
            own (Res2Net: ImageNet statistics, PNS statistics for the PNS family).
        imagenet: ImageNet weights can be installed for it (``vps[train]``).
    """

    name: str
    title: str
    stage_channels: tuple[int, int, int, int]
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    imagenet: bool = False


BACKBONES = {
    "res2net50": BackboneInfo("res2net50", "Res2Net-50 v1b 26w×4s", STAGE_CHANNELS),
    "efficientnet-lite2": BackboneInfo(
        "efficientnet-lite2", "EfficientNet-Lite2", LITE2_STAGE_CHANNELS, LITE_MEAN, LITE_STD, imagenet=True
    ),
}


def available_backbones() -> list[str]:
    """Backbone names, the default first."""
    return list(BACKBONES)


def backbone_info(name: str) -> BackboneInfo:
    """The :class:`BackboneInfo` of ``name``.

    Raises:
        UsageError: unknown name.
    """
    if name not in BACKBONES:
        raise UsageError(
            f"unknown backbone '{name}'", fix="choose one of: " + ", ".join(available_backbones())
        )
    return BACKBONES[name]


def build_backbone(name: str, stages: int = 4) -> Res2NetV1b | EfficientNetLite:
    """A fresh (randomly initialised) backbone returning its first ``stages`` (3 or 4) features.

    Shape: ``(N, 3, H, W)`` → ``[(N, C_i, ⌈H/s_i⌉, ⌈W/s_i⌉)]`` for s = 4, 8, 16(, 32).
    """
    backbone_info(name)
    if name == "res2net50":
        return Res2NetV1b(with_layer4=stages == 4)
    return EfficientNetLite(stages=stages)


def find_backbone(model: nn.Module) -> Res2NetV1b | EfficientNetLite:
    """The one backbone module inside ``model`` (what ImageNet initialises and what training
    treats as the pretrained part).

    Raises:
        ValueError: ``model`` has no backbone, or more than one.
    """
    found = [m for m in model.modules() if isinstance(m, (Res2NetV1b, EfficientNetLite))]
    if len(found) != 1:
        raise ValueError(f"expected one backbone in {type(model).__name__}, found {len(found)}")
    return found[0]
