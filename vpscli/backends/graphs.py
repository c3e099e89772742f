"""Each model's step as a function of tensors only, the form other runtimes compile.

A :class:`~vpscli.models.base.VideoModel` keeps its per-video state in Python objects (a dict of cached
features, a list of memory clips). An exported graph has fixed input shapes and no Python, so the state
becomes explicit tensors of fixed size, and what is index logic stays in the driver
(:mod:`vpscli.backends.driver`):

============  =====================================================  ==============================
model         step graph inputs                                      outputs
============  =====================================================  ==============================
pns-net       clip                                                   logits
pns-plus      clip, anchor                                           logits
cffm          clip, cache, ref_idx, has_refs                         logits, fused8
aen-cffm      clip, cache, ref_idx, has_refs, memory, valid          logits, fused8, e3
aen-pns-plus  clip, anchor, memory, valid                            logits, e3
============  =====================================================  ==============================

with ``clip (1, T, 3, H, W)`` preprocessed frames (T = the model's clip length), ``logits (1, T, 1, H/s,
W/s)`` the model's own prediction at its output stride s (:meth:`~vpscli.models.base.VideoModel.coarse_step`;
the driver upsamples it to H×W in float32 on the host, where a graph at a lower precision computed the
one-channel map slowly), ``anchor (1, 1, 32, h16, w16)`` the PNS+ global queries (a second graph,
``anchor``, makes them from frame 0), ``cache (1, S, E, h8, w8)`` the stride-8 features of the last S = 10
frames (empty slots are never read), ``ref_idx (T, 3)`` where each target's references sit in ``cache``
followed by the clip's own frames, ``has_refs (T,)`` 1 where a target has references (else its per-frame
prediction is taken), ``memory (1, M, q, D)`` the AEN's last M = 9 frame embeddings and ``valid (1, M)`` 1
for a filled slot.

Every graph calls the model's own modules (:meth:`CFFMHead.predict_clip`, :meth:`AEN.interact`, …), so a
graph computes what the model computes; ``tests/test_backends.py`` drives each one over whole videos and
compares it with the model's own stepping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vpscli.models.aen import AENCFFM, AENPNSPlus
from vpscli.models.base import VideoModel, VideoState
from vpscli.models.cffm import CFFM, CFFMFeatures, CFFMHead
from vpscli.models.pns_net import PNSNet
from vpscli.models.pns_plus import PNSPlus, PNSPlusState

__all__ = ["GraphInput", "StepGraph", "GraphSet", "graph_set", "covers", "CACHE_SLOTS"]

#: feature-cache slots: CFFM keeps its last ``cache_frames + 1`` = 10 frames
CACHE_SLOTS = 10


@dataclass(frozen=True)
class GraphInput:
    """One input of a graph: its name, fixed shape and dtype (``float32`` or ``int64``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def example(self) -> Tensor:
        """A valid example value (zeros; the conversion traces with it)."""
        return torch.zeros(self.shape, dtype=torch.int64 if self.dtype == "int64" else torch.float32)


@dataclass(frozen=True)
class StepGraph:
    """A graph to export: the module, its inputs in order and its outputs' names."""

    name: str
    module: nn.Module
    inputs: tuple[GraphInput, ...]
    outputs: tuple[str, ...]

    def examples(self) -> tuple[Tensor, ...]:
        return tuple(i.example() for i in self.inputs)


@dataclass(frozen=True)
class GraphSet:
    """What a model exports: its ``step`` graph, the ``anchor`` graph of PNS+ models, and the shapes of
    the state the driver keeps (``cache`` ``(S, E, h8, w8)``, ``memory`` ``(M, q, D)``; ``None``: none)."""

    step: StepGraph
    anchor: StepGraph | None = None
    cache: tuple[int, ...] | None = None
    memory: tuple[int, ...] | None = None

    @property
    def graphs(self) -> tuple[StepGraph, ...]:
        return (self.step,) if self.anchor is None else (self.step, self.anchor)


def _gathered_predict(
    head: CFFMHead, enc: CFFMFeatures, cache: Tensor, ref_idx: Tensor, has_refs: Tensor, t: int
) -> Tensor:
    """CFFM's prediction with references gathered from ``cat(cache, clip)`` by ``ref_idx``: stride-4
    logits ``(1, T, out, h4, w4)``; targets without references take the per-frame prediction."""
    f8 = enc.fused8.view(1, t, *enc.fused8.shape[1:])
    bank = torch.cat([cache, f8], 1)
    refs = bank.index_select(1, ref_idx.reshape(-1)).view(1, t, ref_idx.shape[1], *f8.shape[2:])
    stacks = torch.cat([refs, f8[:, :, None]], 2).flatten(0, 1)  # (T, refs + 1, E, h8, w8)
    with_refs = head.predict_clip(stacks, tuple(enc.fused.shape[-2:])).unsqueeze(0)
    single = head.predict_single(enc.fused).view(1, t, *with_refs.shape[2:])
    return torch.where(has_refs.view(1, t, 1, 1, 1) > 0.5, with_refs, single)


class _Plain(nn.Module):
    """A stateless model's step (PNS-Net): ``clip`` → logits."""

    def __init__(self, net: VideoModel):
        super().__init__()
        self.net = net

    def forward(self, clip: Tensor) -> Tensor:
        return self.net.coarse_step(clip, VideoState(), list(range(clip.shape[1])), None)


class _Anchor(nn.Module):
    """PNS+'s anchor queries from frame 0: ``frame (1, 3, H, W)`` → ``(1, 1, 32, h16, w16)``."""

    def __init__(self, pns: PNSPlus):
        super().__init__()
        self.pns = pns

    def forward(self, frame: Tensor) -> Tensor:
        return self.pns.encode_anchor(frame)


class _PNSPlusStep(nn.Module):
    def __init__(self, net: PNSPlus):
        super().__init__()
        self.net = net

    def forward(self, clip: Tensor, anchor: Tensor) -> Tensor:
        return self.net.coarse_step(clip, PNSPlusState(anchor=anchor), list(range(clip.shape[1])), None)


class _CFFMStep(nn.Module):
    def __init__(self, net: CFFM):
        super().__init__()
        self.net = net

    def forward(
        self, clip: Tensor, cache: Tensor, ref_idx: Tensor, has_refs: Tensor
    ) -> tuple[Tensor, Tensor]:
        t = clip.shape[1]
        enc = self.net.encode(clip, VideoState())
        pred = _gathered_predict(self.net.decode_head, enc, cache, ref_idx, has_refs, t)
        return pred, enc.fused8.view(1, t, *enc.fused8.shape[1:])


class _AENCFFMStep(nn.Module):
    def __init__(self, net: AENCFFM):
        super().__init__()
        self.net = net

    def forward(
        self, clip: Tensor, cache: Tensor, ref_idx: Tensor, has_refs: Tensor, memory: Tensor, valid: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        t = clip.shape[1]
        pgn = self.net.pgn
        enc = pgn.encode(clip, VideoState())
        e1 = _gathered_predict(pgn.decode_head, enc, cache, ref_idx, has_refs, t)
        logits, e3 = self.net.aen.interact(enc.stages, enc.embeds, e1, memory, valid)
        return logits, enc.fused8.view(1, t, *enc.fused8.shape[1:]), e3


class _AENPNSPlusStep(nn.Module):
    def __init__(self, net: AENPNSPlus):
        super().__init__()
        self.net = net

    def forward(self, clip: Tensor, anchor: Tensor, memory: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        t = clip.shape[1]
        f = self.net.pgn.features(clip, PNSPlusState(anchor=anchor), None)
        backbone, pgn, e1 = self.net.aen_inputs(f, 1, t)
        logits, e3 = self.net.aen.interact(backbone, pgn, e1, memory, valid)
        return logits, e3


def covers(net) -> bool:
    """Whether :func:`graph_set` exports ``net`` (the zoo's five models; not stand-ins or wrappers)."""
    return isinstance(net, (PNSNet, PNSPlus, CFFM, AENCFFM, AENPNSPlus))


def graph_set(net: VideoModel) -> GraphSet:
    """The graphs that compute ``net``'s steps (batch 1, its clip length, its input size).

    Raises:
        ValueError: a model these graphs do not cover.
    """
    spec = net.spec
    h, w = spec.input_size
    t = spec.clip_length
    clip = GraphInput("clip", (1, t, 3, h, w))
    logits = "logits"
    if isinstance(net, (AENCFFM, AENPNSPlus)):
        aen = net.aen
        memory_shape = (aen.memory_clips * t, aen.classes * aen.proposals, aen.csa.token_pos.shape[1])
        memory = (GraphInput("memory", (1, *memory_shape)), GraphInput("valid", (1, memory_shape[0])))
    if isinstance(net, (CFFM, AENCFFM)):
        cffm = net if isinstance(net, CFFM) else net.pgn
        refs = len(cffm.spec.ref_offsets)
        with torch.no_grad():  # the stride-8 map's size, as the backbone rounds it
            fused8 = cffm.encode(torch.zeros(1, 1, 3, h, w), VideoState()).fused8
        cache_shape = (CACHE_SLOTS, *fused8.shape[1:])
        cached = (
            clip,
            GraphInput("cache", (1, *cache_shape)),
            GraphInput("ref_idx", (t, refs), "int64"),
            GraphInput("has_refs", (t,)),
        )
        if isinstance(net, CFFM):
            step = StepGraph("step", _CFFMStep(net), cached, (logits, "fused8"))
            return GraphSet(step, cache=cache_shape)
        step = StepGraph("step", _AENCFFMStep(net), cached + memory, (logits, "fused8", "e3"))
        return GraphSet(step, cache=cache_shape, memory=memory_shape)
    if isinstance(net, (PNSPlus, AENPNSPlus)):
        pns = net if isinstance(net, PNSPlus) else net.pgn
        with torch.no_grad():
            anchor = GraphInput("anchor", tuple(pns.encode_anchor(torch.zeros(1, 3, h, w)).shape))
        anchor_graph = StepGraph("anchor", _Anchor(pns), (GraphInput("frame", (1, 3, h, w)),), ("anchor",))
        if isinstance(net, PNSPlus):
            return GraphSet(StepGraph("step", _PNSPlusStep(net), (clip, anchor), (logits,)), anchor_graph)
        step = StepGraph("step", _AENPNSPlusStep(net), (clip, anchor) + memory, (logits, "e3"))
        return GraphSet(step, anchor_graph, memory=memory_shape)
    if isinstance(net, PNSNet):
        return GraphSet(StepGraph("step", _Plain(net), (clip,), (logits,)))
    raise ValueError(f"{type(net).__name__} ({spec.name}): no exported graph covers this network")
