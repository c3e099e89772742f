"""The driver of compiled step graphs: a model's per-video state kept in arrays, its index logic in Python.

:class:`CompiledModel` stands where a :class:`~vpscli.models.base.VideoModel` stands in the inference
driver (``spec``, ``init_state``, ``preprocess``, ``model(clip, state, frame_indices=…, anchor=…)``), and
runs the graphs of :mod:`vpscli.backends.graphs` on another runtime. The rules it applies are the model's
own: CFFM's reference choice and cache eviction (:func:`~vpscli.models.cffm.choose_references`,
:func:`~vpscli.models.cffm.cache_keeps`), the AEN's memory of the last clips, the PNS+ anchor encoded once
per video from frame 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from vpscli.backends.graphs import GraphSet
from vpscli.models.base import ModelSpec, VideoModel, VideoState, upsample_clip
from vpscli.models.cffm import cache_keeps, choose_references

__all__ = ["CompiledModel", "GraphState", "RunGraph"]

#: a compiled graph: input arrays in the graph's order → output arrays in its order
RunGraph = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


@dataclass
class GraphState(VideoState):
    """A video's state for compiled graphs: the anchor queries, the feature cache (frame index → its
    stride-8 features ``(1, E, h8, w8)``) and the AEN memory ``(1, M, q, D)`` with its filled slots."""

    anchor: np.ndarray | None = None
    cache: dict[int, np.ndarray] = field(default_factory=dict)
    memory: np.ndarray | None = None
    valid: np.ndarray | None = None


class CompiledModel:
    """A model's steps run by compiled graphs (see the module docstring).

    Args:
        net: the torch model the graphs were made from (its spec and preprocessing are used; it is not run).
        graphs: the model's :class:`~vpscli.backends.graphs.GraphSet`.
        step: the compiled step graph; anchor: the compiled anchor graph (PNS+ models).
        backend: the runtime's name, for messages and records.

    Shape: clip ``(B, T, 3, H, W)`` with T the model's clip length → logits ``(B, T, 1, H, W)`` (float32:
    the graphs' logits at the model's output stride, upsampled here as the model does it,
    :func:`~vpscli.models.base.upsample_clip`).
    Models with a cache or memory take B = 1; the others run the B clips one after another.
    """

    def __init__(
        self, net: VideoModel, graphs: GraphSet, step: RunGraph, anchor: RunGraph | None, backend: str
    ):
        self.net = net
        self.spec: ModelSpec = net.spec
        self.graphs = graphs
        self.backend = backend
        self._step, self._anchor = step, anchor
        self.cache_frames = max((-o for o in self.spec.ref_offsets), default=0)
        #: called with each step's input arrays before the step runs (int8 calibration records them)
        self.input_hook: Callable[[list[np.ndarray]], None] | None = None
        #: set by :func:`~vpscli.backends.compile_model`: the runtime's version, the precision, its threads,
        #: the cache entry's folder and whether its graphs were converted now
        self.version: str | None = None
        self.precision = "fp32"
        self.threads = 1
        self.cache_entry: Path | None = None
        self.built = False

    def __repr__(self) -> str:
        return f"CompiledModel({self.spec.name}, backend={self.backend})"

    def init_state(self) -> GraphState:
        state = GraphState()
        if self.graphs.memory is not None:
            state.memory = np.zeros((1, *self.graphs.memory), np.float32)
            state.valid = np.zeros((1, self.graphs.memory[0]), np.float32)
        return state

    def preprocess(self, frames: Tensor) -> Tensor:
        return self.net.preprocess(frames)

    def __call__(
        self,
        clip: Tensor,
        state: GraphState | None = None,
        *,
        frame_indices: Sequence[int] | None = None,
        anchor: Tensor | None = None,
    ) -> tuple[Tensor, GraphState]:
        state = state or self.init_state()
        b, t = clip.shape[:2]
        if t != self.spec.clip_length:
            raise ValueError(f"{self.spec.name} graphs take clips of {self.spec.clip_length} frames, got {t}")
        if b > 1 and (self.graphs.cache is not None or self.graphs.memory is not None):
            raise ValueError(f"{self.spec.name} carries state from clip to clip: one clip per step")
        indices = (
            list(range(state.frames_seen, state.frames_seen + t))
            if frame_indices is None
            else [int(i) for i in frame_indices]
        )
        x = clip.detach().float().cpu().numpy()
        if self._anchor is not None and state.anchor is None:
            first = (x[:1, 0] if anchor is None else anchor.detach().float().cpu().numpy())[:1]
            state.anchor = self._anchor([np.ascontiguousarray(first)])[0]
            state.backbone_frames += 1
        logits = [self._one(np.ascontiguousarray(x[i : i + 1]), state, indices) for i in range(b)]
        state.frames_seen = max(state.frames_seen, indices[-1] + 1)
        state.backbone_frames += b * t
        return upsample_clip(torch.from_numpy(np.concatenate(logits, 0)), clip.shape[-2:]), state

    def _one(self, clip: np.ndarray, state: GraphState, indices: list[int]) -> np.ndarray:
        inputs: list[np.ndarray] = [clip]
        if self.graphs.anchor is not None:
            assert state.anchor is not None
            inputs.append(state.anchor)
        if self.graphs.cache is not None:
            inputs.extend(self._cache_inputs(state, indices))
        if self.graphs.memory is not None:
            assert state.memory is not None and state.valid is not None
            inputs.extend([state.memory, state.valid])
        if self.input_hook is not None:
            self.input_hook([a.copy() for a in inputs])
        out = self._step(inputs)
        rest = out[1:]
        if self.graphs.cache is not None:
            self._update_cache(state, indices, rest[0])
            rest = rest[1:]
        if self.graphs.memory is not None:
            # the AEN's memory: the last memory_clips clips' embeddings, oldest first
            t = len(indices)
            assert state.memory is not None and state.valid is not None
            state.memory = np.concatenate([state.memory[:, t:], rest[0]], 1)
            state.valid = np.concatenate([state.valid[:, t:], np.ones((1, t), np.float32)], 1)
        return out[0]

    def _cache_inputs(self, state: GraphState, indices: list[int]) -> list[np.ndarray]:
        """``cache``, ``ref_idx``, ``has_refs``: the cached frames in the last slots (oldest first), then
        the clip's own frames; a frame the clip re-runs is read from the clip, as the model does."""
        assert self.graphs.cache is not None
        slots = self.graphs.cache[0]
        keys = sorted(state.cache)
        if len(keys) > slots:
            raise RuntimeError(f"the feature cache holds {len(keys)} frames, the graph {slots}")
        cache = np.zeros((1, *self.graphs.cache), np.float32)
        slot = {}
        for n, k in enumerate(keys):
            slot[k] = slots - len(keys) + n
            cache[0, slot[k]] = state.cache[k][0]
        slot.update({i: slots + j for j, i in enumerate(indices)})
        refs = len(self.spec.ref_offsets)
        ref_idx = np.zeros((len(indices), refs), np.int64)
        has_refs = np.zeros(len(indices), np.float32)
        for j, chosen in enumerate(choose_references(indices, slot.keys(), self.spec.ref_offsets)):
            if chosen is not None:
                ref_idx[j] = [slot[r] for r in chosen]
                has_refs[j] = 1.0
        return [cache, ref_idx, has_refs]

    def _update_cache(self, state: GraphState, indices: list[int], fused8: np.ndarray) -> None:
        newest = max([*indices, *state.cache])
        state.cache.update({i: fused8[:, j].copy() for j, i in enumerate(indices)})
        state.cache = {i: state.cache[i] for i in cache_keeps(state.cache, newest, self.cache_frames)}
