"""One optimiser step on a batch of samples, fed to the model as its window prescribes."""
from __future__ import annotations

import torch
from torch import Tensor

from vpscli.train.loss import segmentation_loss
from vpscli.train.windows import TrainWindow

__all__ = ["sample_loss", "train_step"]


def sample_loss(model, batch: dict[str, Tensor], window: TrainWindow, amp: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Run the model over a batch as :mod:`vpscli.train.windows` describes and return the loss
    ``(total, bce, dice)``, averaged over the steps of the window.

    Args:
        batch: ``frames (B, S, 3, H, W)`` in [0, 1], ``masks (B, S, 1, H, W)``, ``anchor (B, 3, H, W)``,
            on the model's device.
        amp: bf16 autocast (CUDA).
    """
    x = model.preprocess(batch["frames"])
    anchor = model.preprocess(batch["anchor"]) if window.needs_anchor else None
    state = model.init_state()
    total = bce = dice = 0.0
    device_type = x.device.type
    for k, indices in enumerate(window.steps):
        cols = window.columns(k)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            logits, state = model(x[:, cols], state, frame_indices=list(indices), anchor=anchor if k == 0 else None)
        t, b, d = segmentation_loss(logits, batch["masks"][:, cols])
        total, bce, dice = total + t, bce + b, dice + d
    n = len(window.steps)
    return total / n, bce / n, dice / n


def train_step(model, optimizer: torch.optim.Optimizer, batch: dict[str, Tensor], window: TrainWindow,
               clip_grad: float | None, amp: bool = False) -> dict[str, float]:
    """Forward, backward, gradient clipping (by global norm), optimiser step.

    Returns ``loss``, ``bce``, ``dice`` and ``grad_norm`` (before clipping).
    """
    optimizer.zero_grad(set_to_none=True)
    loss, bce, dice = sample_loss(model, batch, window, amp)
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip_grad if clip_grad else float("inf"))
    optimizer.step()
    return {"loss": float(loss.detach()), "bce": float(bce.detach()), "dice": float(dice.detach()),
            "grad_norm": float(norm)}
