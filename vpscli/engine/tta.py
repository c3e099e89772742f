"""Test-time augmentation: the model on each clip and on its mirror image, probabilities averaged.

Video models carry state from clip to clip (the PNS+ anchor, CFFM's feature cache, AEN's memory),
so the mirrored frames form a second video with a state of its own: the mirrored stream is what the
model would see if the camera image were flipped left to right, from its first frame on. The
averaged probability ``p = (σ(a) + flip(σ(b))) / 2`` is returned as logits (``logit(p)``), so every
consumer of a model's output (thresholds, upsampling, ``floor(255·p)``) is unchanged.

``vps segment --tta`` (and ``Segmenter(tta=True)``) costs two forward passes per clip;
``benchmarks/bench_frame_decision.py --tta`` and the model card give its measured gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from vpscli.models.base import VideoModel, VideoState

__all__ = ["MirrorAveraged", "MirroredState"]

#: probabilities are kept in [ε, 1 − ε] before ``logit``, so the logits stay finite; σ(logit(p))
#: differs from p by at most ε, far below one level of the 8-bit probability maps (1/255)
_EPS = 1e-6


@dataclass
class MirroredState:
    """The per-video state of :class:`MirrorAveraged`: the wrapped model's state for the video as
    recorded (``plain``) and for its mirror image (``mirrored``)."""

    plain: VideoState
    mirrored: VideoState

    @property
    def frames_seen(self) -> int:
        return self.plain.frames_seen


class MirrorAveraged(nn.Module):
    """A :class:`~vpscli.models.base.VideoModel` run on the clip and on its horizontal mirror image.

    Args:
        net: the model (its weights are shared, not copied).

    Shape: as ``net``: clip ``(B, T, 3, H, W)`` → logits ``(B, T, 1, H, W)`` of the averaged
    probability.

    Example::

        tta = MirrorAveraged(build_model("pns-plus", backbone="efficientnet-lite2"))
        logits, state = tta(clip, tta.init_state(), anchor=anchor)
    """

    def __init__(self, net: VideoModel):
        super().__init__()
        self.net = net
        self.spec = net.spec

    def extra_repr(self) -> str:
        return "flip=horizontal, average=probabilities"

    def init_state(self) -> MirroredState:
        return MirroredState(self.net.init_state(), self.net.init_state())

    def preprocess(self, x: Tensor) -> Tensor:
        return self.net.preprocess(x)

    def forward(
        self,
        clip: Tensor,
        state: MirroredState | None = None,
        *,
        frame_indices: Sequence[int] | None = None,
        anchor: Tensor | None = None,
    ) -> tuple[Tensor, MirroredState]:
        state = state or self.init_state()
        plain, state.plain = self.net(clip, state.plain, frame_indices=frame_indices, anchor=anchor)
        mirrored_anchor = None if anchor is None else anchor.flip(-1)
        mirrored, state.mirrored = self.net(
            clip.flip(-1), state.mirrored, frame_indices=frame_indices, anchor=mirrored_anchor
        )
        p = (torch.sigmoid(plain.float()) + torch.sigmoid(mirrored.float()).flip(-1)) * 0.5
        return torch.logit(p, eps=_EPS), state
