"""Today's training loader, kept as the baseline of ``bench_train.py`` (not part of the package).

This is the sampling of ``vpscli/train/dataset.py`` and the OpenCV augmentation of
``vpscli/train/augment.py`` as they were before the device-resident store (commit ce202e2; the
geometry helpers and the file readers it shares with the package are imported): every sample decodes its JPEG/PNG files and is
augmented frame by frame with OpenCV, in ``torch.utils.data.DataLoader`` workers. The benchmark
times it against :mod:`vpscli.train.store` + :mod:`vpscli.train.augment` in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vpscli.train.augment import AugmentConfig, affine_matrix, random_geometry, random_motion
from vpscli.train.sources import DataSource, Sequence
from vpscli.train.store import read_binary_mask, read_rgb
from vpscli.train.windows import TrainWindow

__all__ = ["LegacyAugmentConfig", "LegacyTrainSet"]

#: the augmentation settings did not change
LegacyAugmentConfig = AugmentConfig


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


def augment_clip(
    frames: list[np.ndarray],
    masks: list[np.ndarray | None],
    kind: str,
    out_hw: tuple[int, int],
    rng: np.random.Generator,
    cfg: LegacyAugmentConfig = LegacyAugmentConfig(),
) -> tuple[np.ndarray, np.ndarray]:
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
        colour = (
            float(rng.uniform(-cfg.brightness, cfg.brightness)),
            float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)),
            float(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)),
            rng.uniform(1 - cfg.channel_gain, 1 + cfg.channel_gain, 3).astype(np.float32),
        )
        sigma = float(rng.uniform(0.5, 1.5)) if rng.random() < cfg.blur else 0.0
    for i, (frame, mask) in enumerate(zip(frames, masks)):
        geoms = []
        if cfg.enabled:
            geoms = [geom, random_motion(rng, cfg)] if kind == "image" else [geom]
        m = affine_matrix(frame.shape[:2], out_hw, *geoms)
        warped = cv2.warpAffine(frame, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        f = warped.astype(np.float32) / 255.0
        if mask is not None:
            wm = cv2.warpAffine(
                mask.astype(np.float32), m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            )
            out_m[i] = wm > 0.5
        if cfg.enabled:
            f = _colour(f, colour)
            if sigma:
                f = cv2.GaussianBlur(f, (0, 0), sigma)
            if rng.random() < cfg.highlights:
                f = _highlights(f, rng)
        out_f[i] = f
    return out_f, out_m


@dataclass(frozen=True)
class _Slot:
    sequence: int
    number: int


class LegacyTrainSet(Dataset):
    """Map-style dataset of one epoch's samples (call :meth:`set_epoch` before iterating).

    Item ``k`` is a dict:

    - ``frames``: ``(S, 3, H, W)`` float32 RGB in [0, 1], S = ``window.n_frames``;
    - ``masks``: ``(S, 1, H, W)`` float32 in {0, 1};
    - ``anchor``: ``(3, H, W)`` float32 (zeros when the model takes none).

    Args:
        sources: the ``--data`` folders.
        window: the model's :class:`~vpscli.train.windows.TrainWindow`.
        input_size: network input ``(H, W)``.
        seed: run seed.
        augment: augmentation settings (``LegacyAugmentConfig(enabled=False)``: resize only).
    """

    def __init__(
        self,
        sources: list[DataSource],
        window: TrainWindow,
        input_size: tuple[int, int],
        seed: int = 0,
        augment: LegacyAugmentConfig = LegacyAugmentConfig(),
    ):
        self.sequences: list[Sequence] = [s for src in sources for s in src.sequences]
        self.window = window
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.seed = int(seed)
        self.augment = augment
        self.slots = [_Slot(i, j) for i, seq in enumerate(self.sequences) for j in range(self._n_slots(seq))]
        self.set_epoch(0)

    def _n_slots(self, seq: Sequence) -> int:
        if seq.kind == "image":
            return 1
        return max(1, round(len(seq) / self.window.n_frames))

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the slots for ``epoch`` (a permutation seeded by ``(seed, epoch)``)."""
        self.epoch = int(epoch)
        order = np.random.default_rng([self.seed, self.epoch, 0x5107]).permutation(len(self.slots))
        self.order = [self.slots[i] for i in order]

    def __len__(self) -> int:
        return len(self.order)

    def frame_indices(self, seq: Sequence, rng: np.random.Generator) -> list[int]:
        """Indices into ``seq`` of the sample's frames: a random span, clamped to the case
        (cases shorter than the span repeat their last frame)."""
        if seq.kind == "image":
            return [0] * self.window.n_frames
        start = int(rng.integers(0, max(1, len(seq) - self.window.span + 1)))
        return [min(start + p, len(seq) - 1) for p in self.window.positions]

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        slot = self.order[k]
        seq = self.sequences[slot.sequence]
        rng = np.random.default_rng([self.seed, self.epoch, slot.sequence, slot.number])
        idx = self.frame_indices(seq, rng)
        if self.window.needs_anchor:
            idx = [0] + idx  # the case's first frame, as at inference (stills: another view)
        cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for i in set(idx):
            mask = None if seq.masks[i] is None else read_binary_mask(seq.masks[i])
            cache[i] = (read_rgb(seq.frames[i]), mask)
        frames, masks = augment_clip(
            [cache[i][0] for i in idx],
            [cache[i][1] for i in idx],
            seq.kind,
            self.input_size,
            rng,
            self.augment,
        )
        frames_t = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        masks_t = torch.from_numpy(masks)[:, None]
        if self.window.needs_anchor:
            anchor, frames_t, masks_t = frames_t[0], frames_t[1:], masks_t[1:]
        else:
            anchor = torch.zeros(3, *self.input_size)
        return {"frames": frames_t, "masks": masks_t, "anchor": anchor}
