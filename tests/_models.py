"""Test models that behave like trained ones.

Built with a fixed seed, then :func:`~vpscli.train.calibration.calibrate_batchnorm`: BatchNorm
statistics measured on synthetic colonoscopy frames, fed as training feeds the model. Their
logits are of order 1 (a fresh network's reach 10⁴–10⁷ in the PNS family), so probabilities
lie strictly inside (0, 1) and comparisons of probabilities test something.
"""

from __future__ import annotations

import torch

from vpscli.models import build_model
from vpscli.train.calibration import calibrate_batchnorm


def trained_like(name: str, input_size: tuple[int, int], seed: int = 0, backbone: str = "res2net50"):
    """``name`` on ``backbone`` at ``input_size`` with seeded weights and calibrated BatchNorm, in eval mode."""
    torch.manual_seed(seed)
    return calibrate_batchnorm(build_model(name, backbone=backbone, input_size=input_size), samples=1)


#: the input size of each model in tests (small enough for a 2-core CPU)
TINY = {
    "pns-plus": (64, 112),
    "aen-cffm": (64, 96),
    "cffm": (64, 96),
    "pns-net": (64, 112),
    "aen-pns-plus": (64, 112),
}


def scripted_stand_in(pattern: str):
    """A stand-in model (:class:`~vpscli.models.stand_in.StandInModel`, pns-plus's windowing) that flags
    exactly the frames a test names: ``"##..#"`` draws the stand-in's ellipse on frames 0, 1 and 4 and
    nothing (logit −8) on the others, so every mask is known in advance."""
    from vpscli.models.registry import get_spec
    from vpscli.models.stand_in import StandInModel

    class Scripted(StandInModel):
        def step(self, clip, state, indices, anchor):
            logits = super().step(clip, state, indices, anchor)
            on = torch.tensor([i < len(pattern) and pattern[i] == "#" for i in indices])
            return torch.where(on[None, :, None, None, None], logits, torch.full_like(logits, -8.0))

    return Scripted(get_spec("pns-plus"))
