"""Training samples: which windows an epoch visits, and one sample as tensors.

An epoch is a shuffled list of *slots* (sequence, slot number). A video or negative case of
``n`` frames gets ``max(1, round(n / frames_per_sample))`` slots, a still one slot, so each
frame is seen about once per epoch whatever the mix of folders. Each slot draws its window
start and its augmentation from its own generator, seeded by ``(seed, epoch, slot)``: the
same run gives the same samples in any order and in any worker (resume needs that).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vpscli.errors import InputError
from vpscli.train.augment import AugmentConfig, augment_clip
from vpscli.train.sources import DataSource, Sequence
from vpscli.train.windows import TrainWindow

__all__ = ["read_rgb", "read_binary_mask", "TrainSet"]


def read_rgb(path) -> np.ndarray:
    """A frame as ``(h, w, 3)`` uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError("cannot read this image", path=path, fix="replace the damaged file")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_binary_mask(path) -> np.ndarray:
    """A mask as ``(h, w)`` bool (foreground: > 127 after :func:`vpscli.io.masks.read_mask`'s conversions)."""
    from vpscli.io.masks import read_mask

    return read_mask(path).array > 127


@dataclass(frozen=True)
class _Slot:
    sequence: int
    number: int


class TrainSet(Dataset):
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
        augment: augmentation settings (``AugmentConfig(enabled=False)``: resize only).
    """

    def __init__(self, sources: list[DataSource], window: TrainWindow, input_size: tuple[int, int],
                 seed: int = 0, augment: AugmentConfig = AugmentConfig()):
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
        frames, masks = augment_clip([cache[i][0] for i in idx], [cache[i][1] for i in idx], seq.kind,
                                     self.input_size, rng, self.augment)
        frames_t = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        masks_t = torch.from_numpy(masks)[:, None]
        if self.window.needs_anchor:
            anchor, frames_t, masks_t = frames_t[0], frames_t[1:], masks_t[1:]
        else:
            anchor = torch.zeros(3, *self.input_size)
        return {"frames": frames_t, "masks": masks_t, "anchor": anchor}
