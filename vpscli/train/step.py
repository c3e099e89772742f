"""One optimiser step on a batch of samples, fed to the model as its window prescribes."""

from __future__ import annotations

import torch
from torch import Tensor

from vpscli.train.loss import segmentation_loss
from vpscli.train.windows import TrainWindow

__all__ = ["STEP_VALUES", "sample_loss", "train_step"]


def sample_loss(
    model, batch: dict[str, Tensor], window: TrainWindow, amp: bool = False, forward=None
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the model over a batch as :mod:`vpscli.train.windows` describes and return the loss
    ``(total, bce, dice)``, averaged over the steps of the window.

    Args:
        batch: ``frames (B, S, 3, H, W)`` in [0, 1], ``masks (B, S, 1, H, W)``, ``anchor (B, 3, H, W)``,
            on the model's device.
        amp: bf16 autocast (CUDA).
        forward: what to call for a forward pass (``torch.compile``'s wrapper; default ``model``).
    """
    forward = forward or model
    x = model.preprocess(batch["frames"])
    anchor = model.preprocess(batch["anchor"]) if window.needs_anchor else None
    state = model.init_state()
    total = bce = dice = 0.0
    device_type = x.device.type
    for k, indices in enumerate(window.steps):
        cols = window.columns(k)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            logits, state = forward(
                x[:, cols], state, frame_indices=list(indices), anchor=anchor if k == 0 else None
            )
        t, b, d = segmentation_loss(logits, batch["masks"][:, cols])
        total, bce, dice = total + t, bce + b, dice + d
    n = len(window.steps)
    return total / n, bce / n, dice / n


#: what :func:`train_step` returns, in this order
STEP_VALUES = ("loss", "bce", "dice", "grad_norm")


def train_step(
    model,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, Tensor],
    window: TrainWindow,
    clip_grad: float | None,
    amp: bool = False,
    forward=None,
) -> Tensor:
    """Forward, backward, gradient clipping (by global norm), optimiser step.

    Returns the :data:`STEP_VALUES` (loss, BCE, Dice, gradient norm before clipping) as one
    ``(4,)`` float32 tensor on the model's device. Nothing here reads a value back to the host, so
    on CUDA the host queues the next batch while this one runs; callers sum these tensors and read
    them every ``--log-every`` steps.
    """
    optimizer.zero_grad(set_to_none=True)
    loss, bce, dice = sample_loss(model, batch, window, amp, forward)
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip_grad if clip_grad else float("inf"))
    optimizer.step()
    return torch.stack([loss.detach(), bce.detach(), dice.detach(), norm.detach()]).float()
