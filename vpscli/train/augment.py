"""Augmentation on the training device, in batches: geometry, colour, blur, specular highlights.

A sample's augmentation is drawn on the host from the sample's own generator
(:func:`draw_clip_augment`, a few dozen numbers) and applied to whole batches on the device
(:func:`augment_batch`). Drawing per sample keeps every sample the same whatever the batch, the
order of samples, the device or a resume; applying per batch keeps the device busy with a handful of
batched kernels instead of per-frame OpenCV calls.

What is shared across a clip's frames:

- ``video``/``negative`` clips: one geometry, one colour jitter and one blur for the whole clip
  (a real camera does not flip between frames); specular highlights are drawn per frame (they
  move with the light).
- ``image`` pseudo-clips (the same still repeated): the clip's geometry and colour, then an
  **independent** small shift/rotation/zoom per frame that simulates camera motion, as PNS-Net
  and PNS+ pre-train on images.

Geometry: the resize from the store size to the network input, the flips, zoom (with crop),
rotation and shift — and for stills the per-frame motion — are composed into one affine matrix
per frame, so each frame is interpolated once (:func:`kornia.geometry.transform.warp_affine`:
exact bilinear interpolation in OpenCV's pixel convention, batched). Masks follow the geometry
only (bilinear warp of the coverage, then > 0.5). Blur is :func:`kornia.filters.gaussian_blur2d`
with a σ per clip. Kornia's random augmentation modules (``VideoSequential``) are not used: they
draw from torch's global generator per batch, so a sample would change with its batch-mates and
a resumed run would not reproduce the uninterrupted one; its functional kernels do the work here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "AugmentConfig",
    "Geometry",
    "ClipAugment",
    "random_geometry",
    "random_motion",
    "affine_matrix",
    "draw_clip_augment",
    "augment_batch",
    "to_device",
    "MAX_HIGHLIGHTS",
]

#: specular highlights per frame, at most
MAX_HIGHLIGHTS = 4
#: the largest blur σ (output pixels) and the kernel that holds ±3σ of it
_BLUR_SIGMA = (0.5, 1.5)
_BLUR_KERNEL = 2 * math.ceil(3 * _BLUR_SIGMA[1]) + 1


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of each augmentation (``enabled=False``: resize only).

    Attributes:
        flip: probability of a horizontal flip, and separately of a vertical one.
        scale: zoom range (> 1 crops in).
        rotate: largest rotation, degrees.
        shift: largest shift, fraction of the output size.
        brightness, contrast, saturation: jitter amplitudes (additive / multiplicative).
        channel_gain: per-channel gain amplitude (colour cast).
        blur: probability of a Gaussian blur of the clip (σ 0.5–1.5 px at the output size).
        highlights: per-frame probability of drawing 1–4 specular highlights.
        motion_shift, motion_rotate, motion_scale: per-frame camera motion of image pseudo-clips.
    """

    enabled: bool = True
    flip: float = 0.5
    scale: tuple[float, float] = (0.8, 1.3)
    rotate: float = 20.0
    shift: float = 0.08
    brightness: float = 0.12
    contrast: float = 0.2
    saturation: float = 0.2
    channel_gain: float = 0.08
    blur: float = 0.2
    highlights: float = 0.3
    motion_shift: float = 0.06
    motion_rotate: float = 8.0
    motion_scale: float = 0.08


@dataclass(frozen=True)
class Geometry:
    """A geometric transform in output coordinates (about the output centre)."""

    flip_h: bool = False
    flip_v: bool = False
    scale: float = 1.0
    angle: float = 0.0  # degrees, counter-clockwise
    shift_x: float = 0.0  # fraction of the output width
    shift_y: float = 0.0  # fraction of the output height


def random_geometry(rng: np.random.Generator, cfg: AugmentConfig) -> Geometry:
    """A clip's geometry drawn from ``cfg``."""
    return Geometry(
        flip_h=bool(rng.random() < cfg.flip),
        flip_v=bool(rng.random() < cfg.flip),
        scale=float(math.exp(rng.uniform(math.log(cfg.scale[0]), math.log(cfg.scale[1])))),
        angle=float(rng.uniform(-cfg.rotate, cfg.rotate)),
        shift_x=float(rng.uniform(-cfg.shift, cfg.shift)),
        shift_y=float(rng.uniform(-cfg.shift, cfg.shift)),
    )


def random_motion(rng: np.random.Generator, cfg: AugmentConfig) -> Geometry:
    """One frame's camera motion in an image pseudo-clip."""
    return Geometry(
        scale=float(1.0 + rng.uniform(-cfg.motion_scale, cfg.motion_scale)),
        angle=float(rng.uniform(-cfg.motion_rotate, cfg.motion_rotate)),
        shift_x=float(rng.uniform(-cfg.motion_shift, cfg.motion_shift)),
        shift_y=float(rng.uniform(-cfg.motion_shift, cfg.motion_shift)),
    )


def _about_centre(geom: Geometry, out_hw: tuple[int, int]) -> np.ndarray:
    """3×3 matrix of ``geom`` acting on output pixel coordinates."""
    h, w = out_hw
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    flip = np.diag([-1.0 if geom.flip_h else 1.0, -1.0 if geom.flip_v else 1.0, 1.0])
    rot = np.vstack([cv2.getRotationMatrix2D((0.0, 0.0), geom.angle, geom.scale), [0, 0, 1]])
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    back = np.array(
        [[1, 0, cx + geom.shift_x * w], [0, 1, cy + geom.shift_y * h], [0, 0, 1]], dtype=np.float64
    )
    return back @ rot @ flip @ to_origin


def affine_matrix(src_hw: tuple[int, int], out_hw: tuple[int, int], *geoms: Geometry) -> np.ndarray:
    """2×3 matrix mapping source pixels to output pixels: resize to ``out_hw``, then ``geoms``
    in order (each about the output centre)."""
    (sh, sw), (oh, ow) = src_hw, out_hw
    m = np.array([[ow / sw, 0, 0.5 * ow / sw - 0.5], [0, oh / sh, 0.5 * oh / sh - 0.5], [0, 0, 1]])
    for g in geoms:
        m = _about_centre(g, out_hw) @ m
    return m[:2].astype(np.float64)


@dataclass(frozen=True)
class ClipAugment:
    """One sample's augmentation, drawn on the host (see the module doc).

    Attributes:
        matrices: ``(S, 2, 3)`` float32, per frame: source (store) pixels → output pixels.
        colour: ``(6,)`` float32: brightness (added), contrast, saturation, red/green/blue gains.
        blur_sigma: σ of the clip's Gaussian blur in output pixels (0: none).
        highlights: ``(S, MAX_HIGHLIGHTS, 5)`` float32, per frame and spot: centre x, y, half-axes
            a, b (output pixels) and angle (radians); ``a = 0``: no spot.
    """

    matrices: np.ndarray
    colour: np.ndarray
    blur_sigma: float
    highlights: np.ndarray


_NO_COLOUR = np.array([0, 1, 1, 1, 1, 1], np.float32)


def _draw_highlights(rng: np.random.Generator, out_hw: tuple[int, int]) -> np.ndarray:
    h, w = out_hw
    spots = np.zeros((MAX_HIGHLIGHTS, 5), np.float32)
    for j in range(int(rng.integers(1, MAX_HIGHLIGHTS + 1))):
        spots[j] = (
            rng.integers(0, w),
            rng.integers(0, h),
            max(1, int(rng.uniform(0.005, 0.04) * w)),
            max(1, int(rng.uniform(0.005, 0.03) * h)),
            math.radians(rng.uniform(0, 180)),
        )
    return spots


def draw_clip_augment(
    rng: np.random.Generator,
    n_frames: int,
    kind: str,
    src_hw: tuple[int, int],
    out_hw: tuple[int, int],
    cfg: AugmentConfig = AugmentConfig(),
) -> ClipAugment:
    """Draw one sample's augmentation (all randomness comes from ``rng``).

    Args:
        n_frames: frames of the sample (anchor included).
        kind: ``video``, ``negative`` (clip-consistent) or ``image`` (independent per-frame motion).
        src_hw: stored frame size; out_hw: network input size.
    """
    highlights = np.zeros((n_frames, MAX_HIGHLIGHTS, 5), np.float32)
    if not cfg.enabled:
        m = affine_matrix(src_hw, out_hw)
        return ClipAugment(np.repeat(m[None], n_frames, 0).astype(np.float32), _NO_COLOUR, 0.0, highlights)
    geom = random_geometry(rng, cfg)
    colour = np.array(
        [
            rng.uniform(-cfg.brightness, cfg.brightness),
            rng.uniform(1 - cfg.contrast, 1 + cfg.contrast),
            rng.uniform(1 - cfg.saturation, 1 + cfg.saturation),
            *rng.uniform(1 - cfg.channel_gain, 1 + cfg.channel_gain, 3),
        ],
        np.float32,
    )
    sigma = float(rng.uniform(*_BLUR_SIGMA)) if rng.random() < cfg.blur else 0.0
    matrices = np.empty((n_frames, 2, 3), np.float32)
    for i in range(n_frames):
        geoms = [geom, random_motion(rng, cfg)] if kind == "image" else [geom]
        matrices[i] = affine_matrix(src_hw, out_hw, *geoms)
        if rng.random() < cfg.highlights:
            highlights[i] = _draw_highlights(rng, out_hw)
    return ClipAugment(matrices, colour, sigma, highlights)


def to_device(array, device: torch.device, dtype=np.float32) -> Tensor:
    """A host array on ``device`` without waiting for the device: a plain ``torch.tensor(…,
    device="cuda")`` copies synchronously, which would stall the host behind every queued kernel."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def _stacked(params: list[ClipAugment], name: str, device: torch.device) -> Tensor:
    """One field of every sample as a tensor on ``device``."""
    return to_device(np.stack([np.asarray(getattr(p, name), np.float32) for p in params]), device)


def _colour(x: Tensor, colour: Tensor) -> Tensor:
    """Saturation about each pixel's grey, contrast about the frame's mean, brightness, channel
    gains, then clipping to [0, 1]; ``x`` ``(N, 3, H, W)``, ``colour`` ``(N, 6)``."""
    c = colour[:, :, None, None]
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * c[:, 2:3]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * c[:, 1:2] + mean + c[:, 0:1]
    return (x * c[:, 3:6]).clamp_(0.0, 1.0)


def _highlight_alpha(spots: Tensor, out_hw: tuple[int, int]) -> Tensor:
    """Soft white ellipses (reflections of the endoscope light): ``spots`` ``(N, K, 5)`` → alpha
    ``(N, 1, H, W)`` in [0, 1], filled ellipses blurred with σ = max(0.6, 0.004 · W)."""
    from kornia.filters import gaussian_blur2d

    h, w = out_hw
    ys = torch.arange(h, device=spots.device, dtype=torch.float32)[:, None]
    xs = torch.arange(w, device=spots.device, dtype=torch.float32)[None, :]
    cx, cy, a, b, angle = (spots[..., i, None, None] for i in range(5))  # each (N, K, 1, 1)
    dx, dy = xs - cx, ys - cy
    cos, sin = torch.cos(angle), torch.sin(angle)
    u = (dx * cos + dy * sin) / a.clamp(min=1e-6)
    v = (-dx * sin + dy * cos) / b.clamp(min=1e-6)
    inside = ((u * u + v * v) <= 1.0) & (a > 0)
    alpha = inside.any(dim=1, keepdim=True).float()
    sigma = max(0.6, 0.004 * w)
    kernel = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur2d(alpha, (kernel, kernel), (sigma, sigma), border_type="constant")


def augment_batch(
    frames: Tensor, masks: Tensor | None, params: list[ClipAugment], out_hw: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Apply each sample's augmentation to its frames, on their device.

    Args:
        frames: ``(B, S, 3, Hs, Ws)`` uint8 RGB (store size).
        masks: ``(B, S, Hs, Ws)`` uint8 coverage 0–255, or ``None`` (all empty).
        params: B samples' :class:`ClipAugment` (S frames each).
        out_hw: network input ``(H, W)``.

    Returns:
        ``(frames (B, S, 3, H, W) float32 in [0, 1], masks (B, S, 1, H, W) float32 in {0, 1})``.
    """
    from kornia.filters import gaussian_blur2d
    from kornia.geometry.transform import warp_affine

    b, s, _, sh, sw = frames.shape
    h, w = out_hw
    device = frames.device
    matrices = _stacked(params, "matrices", device).view(b * s, 2, 3)
    x = warp_affine(
        frames.reshape(b * s, 3, sh, sw).float().div_(255),
        matrices,
        (h, w),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    if masks is None:
        m = torch.zeros(b * s, 1, h, w, device=device)
    else:
        cover = warp_affine(
            masks.reshape(b * s, 1, sh, sw).float().div_(255),
            matrices,
            (h, w),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        m = (cover > 0.5).float()
    if any(np.any(p.colour != _NO_COLOUR) for p in params):
        x = _colour(x, _stacked(params, "colour", device).repeat_interleave(s, dim=0))
    blurred = [i * s + f for i, p in enumerate(params) if p.blur_sigma > 0 for f in range(s)]
    if blurred:  # only the blurred clips' frames: a blur of the whole batch would cost 5× the rest
        sel = to_device(blurred, device, np.int64)
        # σ stays on the host: kornia checks it is positive there, then copies it without a wait.
        sigma = torch.tensor([[params[i // s].blur_sigma] * 2 for i in blurred], dtype=torch.float32)
        x[sel] = gaussian_blur2d(x[sel], (_BLUR_KERNEL, _BLUR_KERNEL), sigma)
    lit = [i * s + f for i, p in enumerate(params) for f in range(s) if p.highlights[f, 0, 2] > 0]
    if lit:
        spots = to_device(np.stack([params[i // s].highlights[i % s] for i in lit]), device)
        sel = to_device(lit, device, np.int64)
        alpha = _highlight_alpha(spots, out_hw)
        x[sel] = x[sel] * (1 - alpha) + 0.98 * alpha
    return x.view(b, s, 3, h, w), m.view(b, s, 1, h, w)
