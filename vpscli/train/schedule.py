"""Learning-rate schedule: linear warm-up, then poly decay (power 0.9) to 0 at the last step."""

from __future__ import annotations

__all__ = ["POLY_POWER", "poly_warmup_lr", "set_lr"]

POLY_POWER = 0.9


def poly_warmup_lr(
    step: int, total_steps: int, base_lr: float, warmup_steps: int, power: float = POLY_POWER
) -> float:
    """Learning rate of optimiser step ``step`` (0-based).

    ``step < warmup``: ``base · (step + 1) / warmup``; then
    ``base · (1 − (step − warmup) / (total − warmup)) ** power`` (``base`` at the first step after
    the warm-up, → 0 at ``total``).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay))
    return base_lr * (1.0 - progress) ** power


def set_lr(optimizer, lr: float) -> None:
    """Set every parameter group's learning rate: ``lr`` times the group's ``lr_mult`` (1 when
    absent; a pretrained backbone's group has :data:`vpscli.train.config.BACKBONE_LR_MULT`)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
