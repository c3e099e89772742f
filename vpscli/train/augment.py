"""Augmentation for training from scratch: geometry, colour, blur, specular highlights.

A sample is a list of RGB frames (``(h, w, 3)`` uint8, the source size) and masks
(``(h, w)`` bool, or ``None`` for a negative) that :func:`augment_clip` turns into network
inputs at ``out_hw`` in one :func:`cv2.warpAffine` per frame (resize, flip, scale/crop,
rotation and shift composed into one matrix, so the frame is interpolated once).

Whole-clip consistency:

- ``video``/``negative`` clips: one geometry, one colour jitter and one blur for the whole clip
  (a real camera does not flip between frames); specular highlights are drawn per frame (they
  move with the light).
- ``image`` pseudo-clips (the same still repeated): the clip's geometry and colour, then an
  **independent** small shift/rotation/zoom per frame that simulates camera motion, as PNS-Net
  and PNS+ pre-train on images.

Masks follow the geometry only (bilinear warp, then > 0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["AugmentConfig", "Geometry", "random_geometry", "affine_matrix", "augment_clip"]


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


def _motion(rng: np.random.Generator, cfg: AugmentConfig) -> Geometry:
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
    back = np.array([[1, 0, cx + geom.shift_x * w], [0, 1, cy + geom.shift_y * h], [0, 0, 1]], dtype=np.float64)
    return back @ rot @ flip @ to_origin


def affine_matrix(src_hw: tuple[int, int], out_hw: tuple[int, int], *geoms: Geometry) -> np.ndarray:
    """2×3 matrix mapping source pixels to output pixels: resize to ``out_hw``, then ``geoms``
    in order (each about the output centre)."""
    (sh, sw), (oh, ow) = src_hw, out_hw
    m = np.array([[ow / sw, 0, 0.5 * ow / sw - 0.5], [0, oh / sh, 0.5 * oh / sh - 0.5], [0, 0, 1]])
    for g in geoms:
        m = _about_centre(g, out_hw) @ m
    return m[:2].astype(np.float64)


def _colour(frame: np.ndarray, rng_values: tuple) -> np.ndarray:
    """Brightness/contrast/saturation/channel gains on a float32 ``(H, W, 3)`` frame in [0, 1]."""
    brightness, contrast, saturation, gains = rng_values
    grey = frame.mean(axis=2, keepdims=True)
    frame = grey + (frame - grey) * saturation
    frame = (frame - frame.mean()) * contrast + frame.mean() + brightness
    return np.clip(frame * gains[None, None, :], 0.0, 1.0)


def _highlights(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw 1–4 soft white specular spots (reflections of the endoscope light)."""
    h, w = frame.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (max(1, int(rng.uniform(0.005, 0.04) * w)), max(1, int(rng.uniform(0.005, 0.03) * h)))
        cv2.ellipse(alpha, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.6, 0.004 * w))[..., None]
    return frame * (1 - alpha) + np.float32(0.98) * alpha


def augment_clip(frames: list[np.ndarray], masks: list[np.ndarray | None], kind: str,
                 out_hw: tuple[int, int], rng: np.random.Generator,
                 cfg: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Augment one sample (see the module doc for what is shared across frames).

    Args:
        frames: S RGB frames ``(h, w, 3)`` uint8 (sizes may differ between frames).
        masks: S masks ``(h, w)`` bool, or ``None`` (empty: negatives).
        kind: ``video``, ``negative`` (clip-consistent) or ``image`` (independent per-frame motion).
        out_hw: output ``(H, W)``.
        rng: the sample's generator (all randomness comes from it).

    Returns:
        ``(frames (S, H, W, 3) float32 in [0, 1], masks (S, H, W) float32 in {0, 1})``.
    """
    oh, ow = out_hw
    n = len(frames)
    out_f = np.empty((n, oh, ow, 3), np.float32)
    out_m = np.zeros((n, oh, ow), np.float32)
    if cfg.enabled:
        geom = random_geometry(rng, cfg)
        colour = (float(rng.uniform(-cfg.brightness, cfg.brightness)),
                  float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)),
                  float(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)),
                  rng.uniform(1 - cfg.channel_gain, 1 + cfg.channel_gain, 3).astype(np.float32))
        sigma = float(rng.uniform(0.5, 1.5)) if rng.random() < cfg.blur else 0.0
    for i, (frame, mask) in enumerate(zip(frames, masks)):
        geoms = []
        if cfg.enabled:
            geoms = [geom, _motion(rng, cfg)] if kind == "image" else [geom]
        m = affine_matrix(frame.shape[:2], out_hw, *geoms)
        warped = cv2.warpAffine(frame, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        f = warped.astype(np.float32) / 255.0
        if mask is not None:
            wm = cv2.warpAffine(mask.astype(np.float32), m, (ow, oh), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)
            out_m[i] = wm > 0.5
        if cfg.enabled:
            f = _colour(f, colour)
            if sigma:
                f = cv2.GaussianBlur(f, (0, 0), sigma)
            if rng.random() < cfg.highlights:
                f = _highlights(f, rng)
        out_f[i] = f
    return out_f, out_m
