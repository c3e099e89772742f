"""Untrained models that behave like trained ones: BatchNorm statistics measured on real-looking frames.

A freshly built network carries BatchNorm running statistics of 0/1. In eval mode nothing then
normalises its activations, and through 50 residual blocks and the NS aggregation the logits of
the PNS family reach 10⁴–10⁷: every probability is 0 or 1, masks are all or nothing, and a
rounding difference in the first layer becomes a different mask. Neither tests nor benchmarks
learn anything from such a model.

:func:`calibrate_batchnorm` runs a few clips of synthetic colonoscopy frames through the model in
training mode (no gradients), fed exactly as ``vps train`` feeds it (:func:`window_for`), and keeps,
in every BatchNorm layer, the exact average of the batch statistics it saw — what a trained model's
running statistics estimate. Afterwards logits are of order 1–10 and probability maps have real
gradients, like a trained model's. Used by the benchmarks and the tests' fixtures.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vpscli.models.base import VideoModel
from vpscli.train.windows import window_for

__all__ = ["calibrate_batchnorm", "synthetic_frames"]


def synthetic_frames(size: tuple[int, int], n: int = 10, seed: int = 11) -> torch.Tensor:
    """``n`` frames of a :mod:`vpscli.synth` clip at ``size`` ``(H, W)``: ``(n, 3, H, W)`` uint8 RGB."""
    from vpscli.synth import SynthConfig, render_clip

    h, w = size
    cfg = SynthConfig(
        frames=n, width=max(w, 32), height=max(h, 32), seed=seed
    )  # with burned-in text, as real video
    images = [image for image, _ in render_clip(cfg)]
    if (cfg.height, cfg.width) != (h, w):
        import cv2

        images = [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def calibrate_batchnorm(
    model: VideoModel, frames: torch.Tensor | None = None, samples: int = 2
) -> VideoModel:
    """Set every BatchNorm layer's running statistics to the mean batch statistics of ``samples``
    training samples cut from ``frames``; returns the model in eval mode. Parameters are unchanged.

    Args:
        frames: ``(N, 3, H, W)`` uint8 (or float in [0, 1]) consecutive frames at the model's input
            size, ``N ≥ samples − 1 + span`` of the model's training window (default: a
            :func:`synthetic_frames` clip of that length).
        samples: training samples to run, each starting one frame later on a fresh video state.
    """
    spec = model.spec
    window = window_for(spec)
    if frames is None:
        frames = synthetic_frames(spec.input_size, samples - 1 + window.span)
    if frames.shape[0] < samples - 1 + window.span:
        raise ValueError(
            f"{spec.name} needs {samples - 1 + window.span} frames for {samples} samples, "
            f"got {frames.shape[0]}"
        )
    x = model.preprocess(frames.to(next(model.parameters()).device))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every sample counts the same
    model.train()
    try:
        for start in range(samples):
            state = model.init_state()
            for k, indices in enumerate(window.steps):
                clip = x[[start + i for i in indices]][None]
                anchor = x[start : start + 1] if spec.needs_anchor and k == 0 else None
                _, state = model(clip, state, frame_indices=list(indices), anchor=anchor)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()
    return model
