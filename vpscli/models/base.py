"""The one contract between every model of the zoo and the inference/training driver.

A model **declares** what it needs (:class:`ModelSpec`) and keeps **no hidden per-video
state**: everything carried from one step to the next lives in an explicit
:class:`VideoState` that the driver creates per video with :meth:`VideoModel.init_state`
and passes through every call (the SAM 2 ``init_state`` → ``propagate_in_video`` pattern).
One driver does the windowing for all models:

.. code-block:: python

    model = build_model("aen-cffm").eval()          # or load weights: load_checkpoint(model, path)
    spec = model.spec                                # clip_length, input_size, needs_anchor, ...
    state = model.init_state()                       # new video → new state (this *is* the reset)
    for start in range(0, n_frames, spec.clip_length):   # driver: tail alignment / padding
        idx = list(range(start, min(start + spec.clip_length, n_frames)))
        clip = frames[idx]                           # T×3×H×W float RGB in [0, 1], H×W = spec.input_size
        x = model.preprocess(clip[None])             # 1×T×3×H×W, the model's own normalisation
        anchor = model.preprocess(frames[:1][None])[:, 0] if spec.needs_anchor else None
        with torch.inference_mode():
            logits, state = model(x, state, frame_indices=idx, anchor=anchor)
        probs = logits.sigmoid()                     # 1×T×1×H×W, one map per frame of the clip

Rules of the contract:

- **Input**: ``clip`` is ``(B, T, 3, H, W)``, already resized to ``spec.input_size`` (any
  size when ``spec.fixed_input_size`` is false) and normalised by :meth:`VideoModel.preprocess`.
  ``B`` is a batch of *different videos* advancing in lockstep (one state holds all B).
- **Output**: pre-sigmoid logits ``(B, T, 1, H, W)`` at the input size, one per clip frame:
  every step owns all of its frames. The driver upsamples to the source resolution. The zoo's
  models predict at ``spec.output_stride`` (:meth:`VideoModel.coarse_step`) and their step is that
  prediction upsampled by :func:`upsample_clip`; exported graphs stop before the upsampling, which the
  backend's driver applies (:mod:`vpscli.backends.driver`).
- **Frames per step**: ``spec.clip_length`` is what the model was designed/trained for;
  PNS-Net/PNS+ and CFFM accept any ``T ≥ 1``; AEN models accept ``1 ≤ T ≤ clip_length``.
  Videos shorter than a window: pad by repeating the last frame and drop padded outputs.
- **frame_indices**: the clip frames' indices in the video (ascending). CFFM uses them to
  pick reference frames ``t−9, t−6, t−3`` from the state's feature cache; default: continue
  from ``state.frames_seen``. Re-running an earlier index (an end-aligned tail window) is allowed.
- **anchor** (``spec.needs_anchor``, PNS+): the video's first frame ``(B, 3, H, W)``,
  preprocessed, or ``(1, 3, H, W)`` when the B clips come from one video. Needed on the first step only (its features are kept in the state); when
  omitted, the first clip's first frame is taken as the anchor.
- **State**: updated in place and returned. ``init_state()`` for every new video.
- Device/dtype follow the input (CPU, CUDA; bf16 autocast works); no ``.cuda()`` inside.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Generic, Sequence, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ModelSpec",
    "VideoState",
    "VideoModel",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PNS_MEAN",
    "PNS_STD",
    "legacy_column_normalize",
    "upsample_clip",
]

#: ImageNet statistics (RGB, [0, 1] scale): our normalisation for every Res2Net model we train.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: PNS-Net/PNS+ statistics (``utils/statistics.pth``; RGB, [0, 1] scale).
PNS_MEAN = (0.4732661, 0.44874457, 0.3948762)
PNS_STD = (0.22674961, 0.22012031, 0.2238305)


@dataclass(frozen=True)
class ModelSpec:
    """What a model needs from the driver. Everything a driver must know is here.

    Attributes:
        name: registry name (one of :func:`vpscli.models.available_models`, e.g. ``aen-cffm``).
        title: one-line human description.
        clip_length: frames per step T the model was designed/trained for (all owned).
        max_clip_length: largest T accepted (``None``: any).
        input_size: native ``(H, W)`` of the network input.
        fixed_input_size: when true, inputs must be exactly ``input_size`` (a layer's shape
            depends on it: PNS LayerNorm, AEN region MLPs); else any size works.
        mean, std: per-channel RGB normalisation on the [0, 1] scale (see :meth:`VideoModel.preprocess`).
        needs_anchor: the model also looks at the video's first frame (PNS+).
        ref_offsets: reference frames relative to each target (CFFM: ``(-9, -6, -3)``), taken
            from the state's feature cache; empty when none.
        memory_clips: clips kept in the state's memory (AEN: 3); 0 when none.
        output_stride: stride of the network's own prediction before upsampling.
        state: what the :class:`VideoState` carries for this model, in words.
        official_weights: names of official checkpoints that load into this model.
        backbone: the feature extractor it is built on (:mod:`vpscli.models.backbone`:
            ``res2net50``, the papers' and the default, or ``efficientnet-lite2``).
    """

    name: str
    title: str
    clip_length: int
    input_size: tuple[int, int]
    fixed_input_size: bool
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    max_clip_length: int | None = None
    needs_anchor: bool = False
    ref_offsets: tuple[int, ...] = ()
    memory_clips: int = 0
    output_stride: int = 4
    state: str = "none"
    official_weights: tuple[str, ...] = ()
    backbone: str = "res2net50"

    def window_text(self) -> str:
        """The window in words, e.g. ``"anchor + 5 frames"``."""
        parts = []
        if self.needs_anchor:
            parts.append("anchor (frame 0) +")
        parts.append(f"{self.clip_length} frame" + ("s" if self.clip_length != 1 else ""))
        if self.ref_offsets:
            parts.append("+ cached refs " + ",".join(f"t{o:+d}" for o in self.ref_offsets))
        if self.memory_clips:
            parts.append(f"+ memory of {self.memory_clips} clips")
        return " ".join(parts)

    def replay_frames(self) -> int | None:
        """Frames before a given frame that must run through the model again to rebuild, exactly,
        the state that frame is predicted with (resuming a video part-way): 0 without state, the
        farthest reference of a per-frame feature cache (each cached entry depends on its own
        frame only), ``None`` — every earlier frame — when a clip memory feeds on the model's own
        outputs (AEN). The anchor (frame 0) is one frame and always re-encoded."""
        if self.memory_clips:
            return None
        return max((-o for o in self.ref_offsets), default=0)

    def as_dict(self) -> dict:
        """JSON-friendly description (used by ``vps models --json``)."""
        return {
            "name": self.name,
            "title": self.title,
            "window": self.window_text(),
            "clip_length": self.clip_length,
            "max_clip_length": self.max_clip_length,
            "input_size": list(self.input_size),
            "fixed_input_size": self.fixed_input_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "needs_anchor": self.needs_anchor,
            "ref_offsets": list(self.ref_offsets),
            "memory_clips": self.memory_clips,
            "output_stride": self.output_stride,
            "state": self.state,
            "official_weights": list(self.official_weights),
            "backbone": self.backbone,
        }

    def with_input_size(self, size: tuple[int, int]) -> "ModelSpec":
        return replace(self, input_size=(int(size[0]), int(size[1])))

    def with_backbone(self, name: str) -> "ModelSpec":
        """This architecture's spec (declared on ``res2net50``) on backbone ``name``: the input
        normalisation becomes the one that backbone's ImageNet weights expect; Res2Net keeps the
        architecture's own (ImageNet statistics, PNS statistics for the PNS family).

        Raises:
            UsageError: unknown backbone.
        """
        from vpscli.models.backbone import backbone_info

        info = backbone_info(name)
        if name == self.backbone:
            return self
        if info.mean is None or info.std is None:
            raise ValueError(
                f"{self.name}: the normalisation of {name} is the architecture's own; "
                "derive this spec from the declared one"
            )
        return replace(self, backbone=name, mean=info.mean, std=info.std)


@dataclass
class VideoState:
    """Per-video inference state, created by :meth:`VideoModel.init_state`, passed through
    every call and updated in place. A new video needs a new state (that is the reset).

    Each model family keeps its own fields in a subclass (:class:`~vpscli.models.pns_plus.PNSPlusState`:
    the anchor; :class:`~vpscli.models.cffm.CFFMState`: the feature cache; the AEN states add the
    clip memory); PNS-Net needs only these.

    Attributes:
        frames_seen: one past the largest frame index processed so far.
        backbone_frames: frames encoded by the backbone for this video (for tests and profiling).
    """

    frames_seen: int = 0
    backbone_frames: int = 0

    def to(self, device: torch.device | str) -> "VideoState":
        """Move every tensor (also inside lists and dicts) to ``device``, for example to park a
        paused video on the CPU."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                setattr(self, f.name, value.to(device))
            elif isinstance(value, dict):
                setattr(self, f.name, {k: v.to(device) for k, v in value.items()})
            elif isinstance(value, list):
                setattr(self, f.name, [v.to(device) for v in value])
        return self


#: a model's own :class:`VideoState` subclass (the type parameter of :class:`VideoModel`)
StateT = TypeVar("StateT", bound=VideoState)


def legacy_column_normalize(
    x: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """The official PNS-Net/PNS+ preprocessing bug, reproduced for their weights.

    Their ``Normalize`` indexes ``img[:, :, i]`` on a C×H×W tensor: it normalises pixel
    **columns** 0, 1, 2 (all channels) with the R, G, B statistics and leaves every other
    column in raw [0, 1] (spec §2.3, GewelsJI/VPS#50).

    Shape: ``(..., 3, H, W)`` → same.
    """
    x = x.clone()
    for i in range(3):
        x[..., i] = (x[..., i] - mean[i]) / std[i]
    return x


class VideoModel(nn.Module, Generic[StateT]):
    """Base class of every model: spec, state, preprocessing, and the step signature.

    Example: ``model = build_model("pns-plus"); logits, state = model(clip, model.init_state(), frame_indices=[0, 1])``.

    Subclasses implement :meth:`coarse_step` (their prediction at ``spec.output_stride``, which
    :meth:`step` upsamples) or :meth:`step` itself; ``forward`` checks the input against the spec. The type
    parameter is the model's state type (``VideoModel[CFFMState]``), the class that ``state_type`` names.

    Attributes:
        spec: the model's :class:`ModelSpec` (input size as built).
        legacy_norm: use :func:`legacy_column_normalize` in :meth:`preprocess` (set by
            :func:`~vpscli.models.checkpoint.load_checkpoint` for official PNS weights).
    """

    spec: ModelSpec

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.legacy_norm = False

    #: the per-video state this model keeps (a :class:`VideoState` subclass with its own fields)
    state_type: type[VideoState] = VideoState

    def init_state(self) -> StateT:
        """A fresh per-video state (empty cache/memory, no anchor)."""
        # a subclass sets state_type to the class it is parameterised with
        return cast(StateT, self.state_type())

    def preprocess(self, frames: Tensor) -> Tensor:
        """Normalise RGB frames in [0, 1] (float, or uint8 in [0, 255]) the way this model expects.

        Resizing is the driver's job (to ``spec.input_size``). Shape: ``(..., 3, H, W)`` → same,
        float32 (or the input's floating dtype).
        """
        fresh = not frames.is_floating_point()
        if fresh:
            # a new contiguous float tensor, normalised in place below: one full-size allocation instead
            # of three, and the same values (measured, a 5-frame 448×256 clip: 5.2 → 1.7 ms on the CPU)
            frames = frames.contiguous().float().div_(255.0)
        mean = torch.tensor(self.spec.mean, dtype=frames.dtype, device=frames.device)
        std = torch.tensor(self.spec.std, dtype=frames.dtype, device=frames.device)
        if self.legacy_norm:
            return legacy_column_normalize(frames, mean, std)
        if fresh:
            return frames.sub_(mean[:, None, None]).div_(std[:, None, None])
        return (frames - mean[:, None, None]) / std[:, None, None]

    def forward(
        self,
        clip: Tensor,
        state: StateT | None = None,
        *,
        frame_indices: Sequence[int] | None = None,
        anchor: Tensor | None = None,
    ) -> tuple[Tensor, StateT]:
        """One step of the window contract (see the module docstring).

        Args:
            clip: ``(B, T, 3, H, W)`` preprocessed frames.
            state: the video's state; ``None`` starts a new one (single-clip use).
            frame_indices: the frames' indices in the video; default continues from
                ``state.frames_seen``.
            anchor: ``(B, 3, H, W)`` (or ``(1, 3, H, W)``, shared) preprocessed first frame of
                the video (PNS+ models).

        Returns:
            ``(logits, state)``: logits ``(B, T, 1, H, W)`` before the sigmoid; the same state, updated.
        """
        if clip.dim() != 5 or clip.shape[2] != 3:
            raise ValueError(f"expected a clip of shape (B, T, 3, H, W), got {tuple(clip.shape)}")
        spec = self.spec
        t = clip.shape[1]
        if t < 1 or (spec.max_clip_length is not None and t > spec.max_clip_length):
            raise ValueError(f"{spec.name} takes 1..{spec.max_clip_length} frames per step, got {t}")
        if spec.fixed_input_size and tuple(clip.shape[-2:]) != tuple(spec.input_size):
            raise ValueError(
                f"{spec.name} was built for {spec.input_size[0]}×{spec.input_size[1]} inputs, got "
                f"{clip.shape[-2]}×{clip.shape[-1]} (resize frames to spec.input_size)"
            )
        if state is None:
            state = self.init_state()
        if frame_indices is None:
            indices = list(range(state.frames_seen, state.frames_seen + t))
        else:
            indices = [int(i) for i in frame_indices]
            if len(indices) != t:
                raise ValueError(f"frame_indices has {len(indices)} entries for {t} frames")
            if any(b <= a for a, b in zip(indices, indices[1:])):
                raise ValueError(f"frame_indices must be increasing, got {indices}")
        logits = self.step(clip, state, indices, anchor)
        state.frames_seen = max(state.frames_seen, indices[-1] + 1)
        return logits, state

    def step(self, clip: Tensor, state: StateT, indices: list[int], anchor: Tensor | None) -> Tensor:
        """Logits ``(B, T, 1, H, W)`` at the clip's size: :meth:`coarse_step` upsampled (:func:`upsample_clip`)."""
        return upsample_clip(self.coarse_step(clip, state, indices, anchor), clip.shape[-2:])

    def coarse_step(self, clip: Tensor, state: StateT, indices: list[int], anchor: Tensor | None) -> Tensor:
        """The network's own prediction, logits ``(B, T, 1, H/s, W/s)`` with ``s = spec.output_stride``
        (rounded as the backbone rounds its strides); the state is updated as by :meth:`step`."""
        raise NotImplementedError


def upsample_clip(logits: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling (half-pixel centres, ``align_corners=False``) of every frame of a clip:
    ``(B, T, c, h, w)`` → ``(B, T, c, H, W)``. How every zoo model brings its prediction to its input size,
    inside the model (torch) or after an exported graph (:mod:`vpscli.backends.driver`)."""
    b, t = logits.shape[:2]
    up = F.interpolate(logits.flatten(0, 1), size=tuple(size), mode="bilinear", align_corners=False)
    return up.view(b, t, *up.shape[1:])
