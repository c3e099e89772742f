"""Fine-tuning from an ImageNet backbone: what changes when the backbone starts pretrained.

- **Learning rate.** The backbone's parameters learn at
  :data:`~vpscli.train.config.BACKBONE_LR_MULT` (0.1, ``vps train --backbone-lr-mult``) times the
  run's rate, every other parameter (necks, NS blocks, decoders, heads: randomly initialised)
  at the full rate: large early updates from a random head would otherwise wash out the
  ImageNet features before the head is any good. The multiplier rides in each AdamW parameter
  group (``lr_mult``) and :func:`vpscli.train.schedule.set_lr` applies it at every step.
- **BatchNorm.** A step sees 1–4 clips of consecutive, near-identical frames: their batch
  statistics are noisy and unlike ImageNet's, and updating the running statistics from them
  would move them far from what the pretrained weights were trained with. The backbone's
  BatchNorm layers therefore normalise with their ImageNet running statistics in training too
  (frozen, as in detection and segmentation fine-tuning); their scale and shift still learn,
  at the backbone's rate. Batch statistics train everywhere else.
"""

from __future__ import annotations

import torch
from torch import nn

from vpscli.models.backbone import find_backbone

__all__ = ["parameter_groups", "make_optimizer", "freeze_batchnorm_statistics"]


def parameter_groups(model: nn.Module, backbone_lr_mult: float) -> list[dict]:
    """AdamW parameter groups: the backbone's parameters with ``lr_mult = backbone_lr_mult``, the
    rest with 1. One group when the multiplier is 1 (a from-scratch run: the same optimiser state
    layout as before there was a choice, so its snapshots still resume)."""
    if backbone_lr_mult == 1:
        return [{"params": list(model.parameters()), "lr_mult": 1.0}]
    backbone = {id(p) for p in find_backbone(model).parameters()}
    return [
        {"params": [p for p in model.parameters() if id(p) in backbone], "lr_mult": float(backbone_lr_mult)},
        {"params": [p for p in model.parameters() if id(p) not in backbone], "lr_mult": 1.0},
    ]


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, backbone_lr_mult: float = 1.0, fused: bool = False
) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`. ``fused`` (``vps train`` sets it on CUDA): one kernel
    for the whole update, with its step counters on the device, so a step neither launches a
    kernel per tensor nor reads a counter back to the host."""
    return torch.optim.AdamW(
        parameter_groups(model, backbone_lr_mult), lr=lr, weight_decay=weight_decay, fused=fused or None
    )


def _keep_eval(module: nn.Module, args) -> None:
    module.training = False  # forward pre-hook: whatever model.train() set, normalise with running statistics


def freeze_batchnorm_statistics(model: nn.Module) -> int:
    """Make every BatchNorm layer of ``model``'s backbone use (and keep) its running statistics,
    in training mode too; returns the number of layers. Parameters still receive gradients."""
    layers = [m for m in find_backbone(model).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.register_forward_pre_hook(_keep_eval)
    return len(layers)
