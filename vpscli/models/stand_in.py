"""A zero-cost stand-in for a model: the pipeline around a model, measured (and tested) alone.

:class:`StandInModel` takes the windowing of a real model (clip length, input size, anchor,
stateless) and returns, for each frame, the logits of an ellipse that drifts with the frame
index — a polyp-sized region with a soft edge in a faint haze, so masks, probability maps, contours and
overlays cost what they cost with a trained model, while the "forward pass" costs nothing.
``benchmarks/bench_segment.py --model-free`` uses it to measure decoding, resizing,
post-processing, PNG writing and overlay encoding on any machine.

    net = StandInModel.like("pns-plus")
    seg = Segmenter(net, device="cpu")       # outputs: a moving ellipse on every frame
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from vpscli.models.base import ModelSpec, VideoModel, VideoState

__all__ = ["StandInModel"]


class StandInModel(VideoModel[VideoState]):
    """Logits of a drifting ellipse, at no cost.

    Args:
        spec: the windowing to imitate (clip length, input size, anchor); the stand-in is
            stateless whatever the spec says (no reference frames, no memory).

    Shape:
        - clip: ``(B, T, 3, H, W)`` → logits ``(B, T, 1, H, W)``; frame ``i``'s ellipse is centred
          at ``(0.5 + 0.2·sin(i/15), 0.5 + 0.2·cos(i/20))`` of the frame, semi-axes 18 % × 14 %,
          logit 8 at the centre falling to −4.5 outside (a trained model's faint haze: level 2 of 255).
    """

    def __init__(self, spec: ModelSpec):
        super().__init__(
            replace(
                spec,
                name="stand-in",
                title=f"zero-cost stand-in for {spec.name}",
                ref_offsets=(),
                memory_clips=0,
                state="none",
                official_weights=(),
            )
        )
        # a parameter, so `.to(device)` and dtype checks behave as for a real model
        self.scale = torch.nn.Parameter(torch.ones(()))

    @classmethod
    def like(cls, name: str) -> "StandInModel":
        """A stand-in with the windowing of the registry model ``name``."""
        from vpscli.models.registry import get_spec

        return cls(get_spec(name))

    def extra_repr(self) -> str:
        return f"like={self.spec.title.rsplit(' ', 1)[-1]}, input_size={self.spec.input_size}"

    def step(self, clip: Tensor, state: VideoState, indices: list[int], anchor: Tensor | None) -> Tensor:
        b, t, _, h, w = clip.shape
        i = torch.tensor(indices, dtype=torch.float32, device=clip.device)[:, None, None]
        cy = 0.5 + 0.2 * torch.sin(i / 15)
        cx = 0.5 + 0.2 * torch.cos(i / 20)
        y = torch.linspace(0, 1, h, device=clip.device)[None, :, None]
        x = torch.linspace(0, 1, w, device=clip.device)[None, None, :]
        r = ((y - cy) / 0.18) ** 2 + ((x - cx) / 0.14) ** 2  # (T, H, W): 1 on the ellipse's edge
        # outside the ellipse a faint haze (p ≈ 0.011, level 2 of 255), as a trained model leaves over a frame
        logits = (8.0 * (1.0 - r)).clamp(-4.5, 8.0) * self.scale
        return logits[None, :, None].expand(b, t, 1, h, w).to(clip.dtype)
