"""Training samples: which windows an epoch visits, as index arithmetic on a :class:`FrameStore`.

An epoch is a shuffled list of *slots* (sequence, slot number). A video or negative case of
``n`` frames gets ``max(1, round(n / frames_per_sample))`` slots, a still one slot, so each
frame is seen about once per epoch whatever the mix of folders. Each slot draws its window
start and its augmentation from its own generator, seeded by ``(seed, epoch, slot)``: the
same run gives the same samples in any order, in any batch and on any device (resume needs
that). A batch is then one gather from the store and one call of
:func:`~vpscli.train.augment.augment_batch`, on the store's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vpscli.train.augment import AugmentConfig, ClipAugment, augment_batch, draw_clip_augment, to_device
from vpscli.train.store import FrameStore, StoredSequence
from vpscli.train.windows import TrainWindow

__all__ = ["Sample", "TrainSamples"]


@dataclass(frozen=True)
class _Slot:
    sequence: int
    number: int


@dataclass(frozen=True)
class Sample:
    """One sample before the device sees it: store rows of its frames (the anchor first when the
    model takes one) and its drawn augmentation."""

    rows: tuple[int, ...]
    augment: ClipAugment
    sequence: int


class TrainSamples:
    """The samples of each epoch (call :meth:`set_epoch` first), made in batches on the store's device.

    :meth:`batch` returns a dict:

    - ``frames``: ``(B, S, 3, H, W)`` float32 RGB in [0, 1], S = ``window.n_frames``;
    - ``masks``: ``(B, S, 1, H, W)`` float32 in {0, 1};
    - ``anchor``: ``(B, 3, H, W)`` float32 (zeros when the model takes none).

    Args:
        store: the decoded data (on the training device).
        window: the model's :class:`~vpscli.train.windows.TrainWindow`.
        input_size: network input ``(H, W)``.
        seed: run seed.
        augment: augmentation settings (``AugmentConfig(enabled=False)``: resize only).

    Usage::

        samples = TrainSamples(store.to("cuda"), window_for(spec), (256, 448), seed=0)
        samples.set_epoch(0)
        batch = samples.batch(range(0, 8))
    """

    def __init__(
        self,
        store: FrameStore,
        window: TrainWindow,
        input_size: tuple[int, int],
        seed: int = 0,
        augment: AugmentConfig = AugmentConfig(),
    ):
        self.store = store
        self.window = window
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.seed = int(seed)
        self.augment = augment
        self.sequences: tuple[StoredSequence, ...] = store.sequences
        self.slots = [_Slot(i, j) for i, seq in enumerate(self.sequences) for j in range(self._n_slots(seq))]
        self.set_epoch(0)

    def _n_slots(self, seq: StoredSequence) -> int:
        if seq.kind == "image":
            return 1
        return max(1, round(seq.length / self.window.n_frames))

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the slots for ``epoch`` (a permutation seeded by ``(seed, epoch)``)."""
        self.epoch = int(epoch)
        order = np.random.default_rng([self.seed, self.epoch, 0x5107]).permutation(len(self.slots))
        self.order = [self.slots[i] for i in order]

    def __len__(self) -> int:
        return len(self.order)

    def frame_indices(self, seq: StoredSequence, rng: np.random.Generator) -> list[int]:
        """Indices into ``seq`` of the sample's frames: a random span, clamped to the case
        (cases shorter than the span repeat their last frame)."""
        if seq.kind == "image":
            return [0] * self.window.n_frames
        start = int(rng.integers(0, max(1, seq.length - self.window.span + 1)))
        return [min(start + p, seq.length - 1) for p in self.window.positions]

    def sample(self, k: int) -> Sample:
        """The ``k``-th sample of the epoch (host side: rows and augmentation, no pixels)."""
        slot = self.order[k]
        seq = self.sequences[slot.sequence]
        rng = np.random.default_rng([self.seed, self.epoch, slot.sequence, slot.number])
        idx = self.frame_indices(seq, rng)
        if self.window.needs_anchor:
            idx = [0] + idx  # the case's first frame, as at inference (stills: another view)
        params = draw_clip_augment(rng, len(idx), seq.kind, self.store.size, self.input_size, self.augment)
        return Sample(tuple(seq.start + i for i in idx), params, slot.sequence)

    def batch(self, ks) -> dict[str, Tensor]:
        """Samples ``ks`` of the epoch as one batch on the store's device (see the class doc)."""
        samples = [self.sample(k) for k in ks]
        device = self.store.device
        rows = to_device([s.rows for s in samples], device, np.int64)  # (B, S')
        b, s = rows.shape
        flat = rows.view(-1)
        frames = self.store.frames.index_select(0, flat).view(b, s, *self.store.frames.shape[1:])
        masks = self.store.masks.index_select(0, flat).view(b, s, *self.store.masks.shape[1:])
        x, m = augment_batch(frames, masks, [smp.augment for smp in samples], self.input_size)
        if self.window.needs_anchor:
            return {"frames": x[:, 1:], "masks": m[:, 1:], "anchor": x[:, 0]}
        return {"frames": x, "masks": m, "anchor": torch.zeros(b, 3, *self.input_size, device=device)}
