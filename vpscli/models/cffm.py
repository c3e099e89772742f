"""CFFM (Sun et al., CVPR 2022: coarse-to-fine feature mining) on a four-stage backbone
(Res2Net-50 or EfficientNet-Lite2, :mod:`vpscli.models.backbone`) with one output channel (spec §5).

The head is the original ``CFFMHead_clips_resize1_8`` of ``GuoleiSun/VSS-CFFM``: a
SegFormer all-MLP decoder per frame, then the CFFM transformer at stride 8, in which the
*target* frame attends to itself and to reference frames t−9, t−6, t−3, far frames coarse and
wide, near frames fine and narrow (:mod:`vpscli.models.cffm_transformer`).

The prediction is ``linear_pred2(concat(target, enhanced target))`` at stride 8, resized to
stride 4, then to the input. Frames 0–2 of a video have no references and use the
per-frame auxiliary prediction ``linear_pred`` (the original's single-frame branch);
frames 3–8 use the original's early-frame table (:func:`reference_frames`).

**Per-frame feature cache.** Each frame's fused decoder features at stride 8 are kept in
the :class:`~vpscli.models.base.VideoState` for 9 frames, so the backbone encodes every
frame exactly once (the original re-encodes the 3 references for every target: 4
backbone passes per frame).

Choices where the original is not applicable: SyncBN → BatchNorm; no ``conv_seg``
(built but never used by the original); a reference index missing from the cache (random
access, sparse training clips) falls back to the nearest earlier frame available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpscli.models.backbone import DEFAULT_BACKBONE, STAGE_CHANNELS, build_backbone
from vpscli.models.base import ModelSpec, VideoModel, VideoState
from vpscli.models.cffm_transformer import CFFMTransformer
from vpscli.models.registry import register_model

__all__ = [
    "CFFM",
    "CFFMState",
    "CFFMFeatures",
    "CFFMHead",
    "reference_frames",
    "choose_references",
    "cache_keeps",
    "CFFM_SPEC",
]

CFFM_SPEC = ModelSpec(
    name="cffm",
    title="CFFM (CVPR 2022): all-MLP decoder + coarse-to-fine transformer",
    clip_length=1,
    input_size=(320, 448),
    fixed_input_size=False,
    ref_offsets=(-9, -6, -3),
    output_stride=4,
    state="per-frame feature cache of the last 9 frames (each frame encoded once)",
)

#: The original's table for targets 3..8 (VSS-CFFM ``CustomDataset_video2_vps.prepare_test_img2``).
_EARLY_REFS = {3: (0, 1, 2), 4: (0, 2, 3), 5: (0, 2, 4), 6: (0, 2, 4), 7: (0, 3, 5), 8: (0, 3, 6)}


def reference_frames(t: int, offsets: Sequence[int] = (-9, -6, -3)) -> tuple[int, ...]:
    """Reference frame indices of target ``t``, farthest first; empty for t < 3.

    ``t ≥ 9``: ``t−9, t−6, t−3``; 3 ≤ t ≤ 8: the original's early-frame table.
    """
    if tuple(offsets) == (-9, -6, -3) and t in _EARLY_REFS:
        return _EARLY_REFS[t]
    refs = tuple(t + o for o in offsets)
    return refs if all(r >= 0 for r in refs) else ()


def choose_references(
    indices: Sequence[int], available: Iterable[int], offsets: Sequence[int]
) -> list[tuple[int, ...] | None]:
    """For each target of a clip, the frames its references are read from (farthest first), or
    ``None`` when it has none (it takes the per-frame prediction).

    Args:
        indices: the clip's frame indices.
        available: frames whose features exist (the cache's and the clip's own).
        offsets: the model's ``ref_offsets``.

    A reference missing from ``available`` (random access, sparse training clips) falls back to the
    nearest earlier frame available.
    """
    present = sorted(set(available))
    chosen: list[tuple[int, ...] | None] = []
    for idx in indices:
        earlier = [i for i in present if i < idx]
        refs = reference_frames(idx, offsets) if offsets else ()
        if not refs or not earlier:
            chosen.append(None)
            continue
        chosen.append(
            tuple(r if r in present else max([i for i in earlier if i <= r] or [earlier[0]]) for r in refs)
        )
    return chosen


def cache_keeps(keys: Iterable[int], newest: int, cache_frames: int) -> list[int]:
    """The cached frames kept once ``newest`` has been seen: the last ``cache_frames + 1`` indices."""
    return [i for i in keys if i >= newest - cache_frames]


class _LinearEmbed(nn.Module):
    """Per-pixel Linear C_in → E (the original ``MLP`` with its ``proj``): ``(N, C_in, h, w)`` → ``(N, E, h, w)``."""

    def __init__(self, c_in: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(c_in, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ConvBNReLU(nn.Module):
    """mmcv ``ConvModule`` (1×1 conv without bias, BN, ReLU); keys ``conv.*``, ``bn.*``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))

    def after_conv(self, y: Tensor) -> Tensor:
        """BN and ReLU of an already convolved ``y``."""
        return F.relu(self.bn(y))


class CFFMHead(nn.Module):
    """All-MLP decoder + CFFM transformer + predictions (``CFFMHead_clips_resize1_8``).

    Args:
        in_channels: backbone stage channels (Res2Net-50: 256, 512, 1024, 2048; Lite2: 24, 48, 120, 352).
        dim: embedding E (256).
        out_channels: prediction channels (1; q proposal maps inside AEN+CFFM).
        depth: CFFM blocks (2).
    """

    def __init__(
        self,
        in_channels: Sequence[int] = STAGE_CHANNELS,
        dim: int = 256,
        out_channels: int = 1,
        depth: int = 2,
    ):
        super().__init__()
        self.linear_c1, self.linear_c2, self.linear_c3, self.linear_c4 = (
            _LinearEmbed(c, dim) for c in in_channels
        )
        self.linear_fuse = _ConvBNReLU(4 * dim, dim)
        self.dropout = nn.Dropout2d(0.1)
        self.linear_pred = nn.Conv2d(dim, out_channels, 1)
        self.linear_pred2 = nn.Conv2d(2 * dim, out_channels, 1)
        self.decoder_focal = CFFMTransformer(dim, depth)

    def embed(self, stages: Sequence[Tensor]) -> tuple[list[Tensor], Tensor, Tensor]:
        """Per-frame decoder.

        Shape: stages ``[(N, C_i, h_i, w_i)]`` → (per-stage embeddings ``[(N, E, h_i, w_i)]``,
        fused ``(N, E, h4, w4)``, fused at stride 8 ``(N, E, ⌊h4/2⌋, ⌊w4/2⌋)``).
        """
        embeds = [
            lin(s) for lin, s in zip((self.linear_c1, self.linear_c2, self.linear_c3, self.linear_c4), stages)
        ]
        size = embeds[0].shape[-2:]
        fused = self.linear_fuse.after_conv(self._fuse_upsampled(embeds, size))
        fused8 = F.interpolate(fused, size=(size[0] // 2, size[1] // 2), mode="bilinear", align_corners=False)
        return embeds, fused, fused8

    def _fuse_upsampled(self, embeds: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
        """``linear_fuse``'s 1×1 conv over the concatenation of every embedding upsampled to stride 4
        (order c4, c3, c2, c1 as in the original), computed as the sum of one conv per stage at that
        stage's own resolution, upsampled afterwards: bilinear resizing and a bias-free 1×1 conv are
        both linear, so they commute, and mixing the coarse stages before upsampling costs a quarter
        of the products and never builds the 4E-channel stride-4 map (a training step's largest
        single cost on the CPU). Shape: 4 × ``(N, E, h_i, w_i)`` → ``(N, E, h4, w4)``."""
        weights = self.linear_fuse.conv.weight.split(embeds[0].shape[1], dim=1)[::-1]  # c1, c2, c3, c4
        out = F.conv2d(embeds[0], weights[0])
        for e, w in zip(embeds[1:], weights[1:]):
            out = out + F.interpolate(F.conv2d(e, w), size=size, mode="bilinear", align_corners=False)
        return out

    def predict_single(self, fused: Tensor) -> Tensor:
        """Per-frame (auxiliary) prediction at stride 4: ``(N, E, h4, w4)`` → ``(N, out, h4, w4)``."""
        return self.linear_pred(self.dropout(fused))

    def predict_clip(self, clip8: Tensor, size4: Sequence[int]) -> Tensor:
        """CFFM prediction for the last frame of ``clip8`` ``(N, 4, E, h8, w8)`` → ``(N, out, h4, w4)``."""
        enhanced = self.decoder_focal(clip8)[:, -1]
        x = self.linear_pred2(self.dropout(torch.cat([clip8[:, -1], enhanced], 1)))
        return F.interpolate(x, size=size4, mode="bilinear", align_corners=False)


@dataclass
class CFFMState(VideoState):
    """CFFM's per-video state: frame index → that frame's fused decoder features at stride 8,
    ``(B, E, h8, w8)``; holds the last ``max(-ref_offsets)+1`` frames, so each frame is encoded by
    the backbone once."""

    feature_cache: dict[int, Tensor] = field(default_factory=dict)


class CFFMFeatures(NamedTuple):
    """What :meth:`CFFM.encode` computes per frame (AEN+CFFM reads it), frames flattened (N = B·T)."""

    stages: list[Tensor]  #: the 4 backbone features
    embeds: list[Tensor]  #: the 4 per-stage E-channel maps
    fused: Tensor  #: ``(N, E, h4, w4)``
    fused8: Tensor  #: ``(N, E, h8, w8)``


@register_model(CFFM_SPEC, rank=30, key_prefix="decode_head.decoder_focal.")
class CFFM(VideoModel[CFFMState]):
    """CFFM for one class.

    Args:
        input_size: default input ``(H, W)`` (any size works; 320×448 in the AEN paper).
        out_channels: 1 (the AEN's proposal network uses q maps).
        spec: override the spec (AEN+CFFM).
        backbone: ``res2net50`` or ``efficientnet-lite2``.

    Shape:
        - clip: ``(B, T, 3, H, W)``, consecutive frames in video order (any T ≥ 1).
        - Output: logits ``(B, T, 1, H, W)``.
    """

    state_type = CFFMState

    def __init__(
        self,
        input_size: tuple[int, int] = (320, 448),
        out_channels: int = 1,
        spec: ModelSpec | None = None,
        backbone: str = DEFAULT_BACKBONE,
    ):
        super().__init__((spec or CFFM_SPEC).with_input_size(input_size).with_backbone(backbone))
        self.backbone = build_backbone(self.spec.backbone, stages=4)
        self.decode_head = CFFMHead(self.backbone.out_channels, 256, out_channels)
        self.cache_frames = max(-o for o in self.spec.ref_offsets) if self.spec.ref_offsets else 9

    def encode(self, clip: Tensor, state: VideoState) -> "CFFMFeatures":
        """Backbone + all-MLP decoder for each frame of the clip, counted in the state
        (:class:`CFFMFeatures`, frames flattened: N = B·T)."""
        frames = clip.flatten(0, 1)
        if frames.is_cuda:
            frames = frames.contiguous(memory_format=torch.channels_last)
        stages = self.backbone(frames)
        state.backbone_frames += frames.shape[0]
        embeds, fused, fused8 = self.decode_head.embed(stages)
        return CFFMFeatures(stages, embeds, fused, fused8)

    def predict(self, enc: "CFFMFeatures", state: CFFMState, indices: list[int], batch: int) -> Tensor:
        """Stride-4 logits for every clip frame, reading references from the cache.

        Updates the cache with the clip's stride-8 features and evicts frames older than
        ``cache_frames`` before the newest. Returns ``(B·T, out, h4, w4)``.
        """
        t = len(indices)
        fused, fused8 = enc.fused, enc.fused8
        f8 = fused8.view(batch, t, *fused8.shape[1:])
        here = {idx: f8[:, j] for j, idx in enumerate(indices)}
        cached = next(iter(state.feature_cache.values()), None)
        if cached is not None and cached.shape != f8[:, 0].shape:
            raise ValueError(
                f"the state holds features of shape {tuple(cached.shape)} but this clip gives "
                f"{tuple(f8[:, 0].shape)}: use model.init_state() for every new video"
            )
        available = {**state.feature_cache, **here}
        size4 = tuple(fused.shape[-2:])
        out: dict[int, Tensor] = {}  # clip position → its logits
        with_refs, stacks = [], []
        for j, (idx, chosen) in enumerate(
            zip(indices, choose_references(indices, available, self.spec.ref_offsets))
        ):
            if chosen is None:
                continue
            with_refs.append(j)
            stacks.append(torch.stack([available[r] for r in chosen] + [here[idx]], 1))
        fused_bt = fused.view(batch, t, *fused.shape[1:])
        single = [j for j in range(t) if j not in with_refs]
        if single:
            pred = self.decode_head.predict_single(fused_bt[:, single].flatten(0, 1))
            pred = pred.view(batch, len(single), *pred.shape[1:])
            for n, j in enumerate(single):
                out[j] = pred[:, n]
        if with_refs:
            pred = self.decode_head.predict_clip(torch.cat(stacks, 0), size4)  # (len·B, out, h4, w4)
            pred = pred.view(len(with_refs), batch, *pred.shape[1:])
            for n, j in enumerate(with_refs):
                out[j] = pred[n]
        # (spelled without max(dict, default=…), which TorchDynamo cannot trace: a graph break per step)
        newest = max([*indices, *state.feature_cache.keys()])
        state.feature_cache.update({i: f.detach() for i, f in here.items()})
        kept = cache_keeps(state.feature_cache, newest, self.cache_frames)
        state.feature_cache = {i: state.feature_cache[i] for i in kept}
        return torch.stack([out[j] for j in range(t)], 1).flatten(0, 1)

    def coarse_step(
        self, clip: Tensor, state: CFFMState, indices: list[int], anchor: Tensor | None
    ) -> Tensor:
        b, t = clip.shape[:2]
        logits = self.predict(self.encode(clip, state), state, indices, b)
        return logits.view(b, t, *logits.shape[1:])
