"""The training loss: 5·BCE + 2·Dice (AEN, AAAI 2024, eq. 10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BCE_WEIGHT", "DICE_WEIGHT", "DICE_SMOOTH", "dice_loss", "segmentation_loss"]

BCE_WEIGHT = 5.0
DICE_WEIGHT = 2.0
#: Added to numerator and denominator: an empty mask with an empty prediction costs 0, and
#: negatives still push the prediction towards 0 (the loss is Σp / (Σp + 1)).
DICE_SMOOTH = 1.0


def dice_loss(logits: Tensor, target: Tensor, smooth: float = DICE_SMOOTH) -> Tensor:
    """Soft Dice loss per frame, averaged: ``1 − (2·Σ p·t + s) / (Σ p + Σ t + s)``, p = σ(logits).

    Shape: ``(..., H, W)`` logits and targets in {0, 1} → scalar.
    """
    p = torch.sigmoid(logits.float()).flatten(-2)
    t = target.float().flatten(-2)
    inter = (p * t).sum(-1)
    return (1 - (2 * inter + smooth) / (p.sum(-1) + t.sum(-1) + smooth)).mean()


def segmentation_loss(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``5·BCE + 2·Dice`` in float32 (also under autocast).

    Args:
        logits: ``(B, T, 1, H, W)`` pre-sigmoid.
        target: same shape, in {0, 1}.

    Returns:
        ``(total, bce, dice)`` scalars; ``bce`` is the mean over all pixels.
    """
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    dice = dice_loss(logits, target)
    return BCE_WEIGHT * bce + DICE_WEIGHT * dice, bce, dice
