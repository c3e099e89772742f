"""The training data, decoded once: every frame and mask of the ``--data`` folders as one uint8
array at a fixed *store size*, kept on the training device.

Decoding JPEG/PNG files and resizing 1080p frames for every sample cost more than a GPU step; a
whole training set is small once it is resized (the shared data, 1,617 frames, is 1.2 GB at 1.3 ×
AEN's 320×448 input). So :func:`build_store` decodes each file once, resizes it to the store size,
and :class:`FrameStore` holds the result; samples are index arithmetic on it
(:mod:`vpscli.train.dataset`) and augmentation runs on it in batches (:mod:`vpscli.train.augment`).

- **Store size**: the training input × the largest zoom of the augmentation (1.3), rounded up to a
  multiple of 8, so a zoomed-in crop still has source pixels for every output pixel.
- **Resizing**: frames with bilinear interpolation, as ``vps segment`` resizes a video to the
  model's input (training sees the same kind of pixels); masks by pixel area (the share of
  polyp in each stored pixel, 0–255), so the warp and the 0.5 threshold of the augmentation put the
  mask's edge where the full-resolution edge is.
- **Cache**: the arrays are saved as ``.npy`` files named by a key of the store size and every
  file's path, size and modification time, and reused by later runs on the same data (loaded with
  ``allow_pickle=False``: plain arrays, no code). A changed, added or removed file changes the key.
  Files are written under temporary names and renamed, index last, so an interrupted build is
  never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torch import Tensor

from vpscli.errors import InputError
from vpscli.io.atomic import atomic_path, write_text_atomic
from vpscli.io.images import read_rgb
from vpscli.train.sources import DataSource, Sequence

__all__ = [
    "STORE_FORMAT",
    "StoredSequence",
    "FrameStore",
    "store_size",
    "store_key",
    "build_store",
    "read_rgb",
    "read_binary_mask",
]

STORE_FORMAT = 1
#: the augmentation's largest zoom (:class:`~vpscli.train.augment.AugmentConfig` ``scale``): stored
#: frames have this much more resolution than the network input.
STORE_MARGIN = 1.3


def read_binary_mask(path) -> np.ndarray:
    """A mask as ``(h, w)`` bool (foreground: > 127 after :func:`vpscli.io.masks.read_mask`'s conversions)."""
    from vpscli.io.masks import read_mask

    try:
        return read_mask(path).array > 127
    except (OSError, ValueError):
        raise InputError("cannot read this mask", path=path, fix="replace the damaged file") from None


def store_size(input_size: tuple[int, int], margin: float = STORE_MARGIN) -> tuple[int, int]:
    """``(H, W)`` of stored frames for a network input ``(H, W)``: × ``margin``, up to a multiple of 8."""
    return tuple(int(math.ceil(s * margin / 8) * 8) for s in input_size)  # type: ignore[return-value]


@dataclass(frozen=True)
class StoredSequence:
    """One case in the store: frames ``start … start + length - 1``; ``kind`` as in
    :class:`~vpscli.train.sources.Sequence`."""

    name: str
    kind: str
    start: int
    length: int


@dataclass
class FrameStore:
    """Decoded training data.

    Example: ``store, cached = build_store([discover_source("kvasir-seg")], store_size((256, 448)), cache_dir())``.

    Attributes:
        frames: ``(N, 3, Hs, Ws)`` uint8 RGB.
        masks: ``(N, Hs, Ws)`` uint8, polyp coverage 0–255 (0 everywhere on negatives).
        sequences: the cases, in ``--data`` order.
        key: the cache key (see the module doc).

    Usage::

        store = build_store(sources, store_size((256, 448)), cache_dir).to("cuda")
    """

    frames: Tensor
    masks: Tensor
    sequences: tuple[StoredSequence, ...]
    key: str

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[3])

    @property
    def device(self) -> torch.device:
        return self.frames.device

    @property
    def nbytes(self) -> int:
        return self.frames.numel() + self.masks.numel()

    def to(self, device: torch.device | str) -> "FrameStore":
        """The store on ``device`` (one copy of each array; ``self`` when already there)."""
        device = torch.device(device)
        if self.frames.device == device:
            return self
        return FrameStore(self.frames.to(device), self.masks.to(device), self.sequences, self.key)

    def __repr__(self) -> str:
        return (
            f"FrameStore({self.frames.shape[0]} frames, {len(self.sequences)} cases, size={self.size}, "
            f"{self.nbytes / 2**20:.0f} MiB on {self.device})"
        )


def _files(sources: list[DataSource]) -> list[tuple[Sequence, int]]:
    return [(seq, i) for src in sources for seq in src.sequences for i in range(len(seq))]


def store_key(sources: list[DataSource], size: tuple[int, int]) -> str:
    """sha256 of the store format, the size and every file's path, size and modification time."""
    h = hashlib.sha256(json.dumps([STORE_FORMAT, list(size)]).encode())
    for src in sources:
        for seq in src.sequences:
            h.update(f"\0{seq.kind}\0{seq.name}".encode())
            for paths in (seq.frames, seq.masks):
                for p in paths:
                    if p is None:
                        h.update(b"\0-")
                        continue
                    try:
                        st = os.stat(p)
                    except OSError:
                        raise InputError(
                            "training file disappeared", path=p, fix="check the data folder"
                        ) from None
                    h.update(f"\0{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _decode_into(
    frames: np.ndarray, masks: np.ndarray, k: int, seq: Sequence, i: int, size: tuple[int, int]
) -> None:
    h, w = size
    rgb = read_rgb(seq.frames[i])
    frames[k] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    if seq.masks[i] is None:
        masks[k] = 0
        return
    mask = read_binary_mask(seq.masks[i]).astype(np.uint8) * 255
    # an annotation of another image, or exported at another size: never guessed
    if mask.shape != rgb.shape[:2]:
        raise InputError(
            f"this mask is {mask.shape[1]}x{mask.shape[0]} but its frame {seq.frames[i].name} is "
            f"{rgb.shape[1]}x{rgb.shape[0]}",
            path=seq.masks[i],
            fix="export the mask at its frame's size (or check that it belongs to this frame)",
        )
    masks[k] = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)


def _sequences(sources: list[DataSource]) -> tuple[StoredSequence, ...]:
    out, start = [], 0
    for src in sources:
        for seq in src.sequences:
            out.append(StoredSequence(seq.name, seq.kind, start, len(seq)))
            start += len(seq)
    return tuple(out)


def _fill(
    frames: np.ndarray,
    masks: np.ndarray,
    files,
    size,
    threads: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Decode every file into its row, on ``threads`` threads (OpenCV releases the GIL)."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store") as pool:
        jobs = [pool.submit(_decode_into, frames, masks, k, seq, i, size) for k, (seq, i) in enumerate(files)]
        for n, job in enumerate(jobs, 1):
            job.result()  # the first unreadable file stops the build with its one-line error
            if progress and (n % 64 == 0 or n == len(jobs)):
                progress(n, len(jobs))


def _cache_paths(cache_dir: Path, key: str, size: tuple[int, int]) -> tuple[Path, Path, Path]:
    stem = cache_dir / f"{key[:24]}-{size[0]}x{size[1]}"
    return stem.with_suffix(".frames.npy"), stem.with_suffix(".masks.npy"), stem.with_suffix(".json")


def _load_cached(
    cache_dir: Path, key: str, size: tuple[int, int], n: int
) -> tuple[np.ndarray, np.ndarray] | None:
    frames_path, masks_path, index_path = _cache_paths(cache_dir, key, size)
    try:
        index = json.loads(index_path.read_text())
        if index.get("key") != key:
            return None
        frames = np.load(frames_path, allow_pickle=False)
        masks = np.load(masks_path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # absent or damaged: built again
    if frames.shape != (n, 3, *size) or masks.shape != (n, *size) or frames.dtype != np.uint8:
        return None
    return frames, masks


def build_store(
    sources: list[DataSource],
    size: tuple[int, int],
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[FrameStore, bool]:
    """Decode ``sources`` at ``size`` ``(H, W)``, or load them from ``cache_dir``'s cache.

    Args:
        cache_dir: where the arrays are cached (``None``: no cache, decoded in memory).
        threads: decoding threads (default: the usable CPUs).
        progress: called with ``(done, total)`` files while decoding.

    Returns:
        ``(store on the CPU, True when it came from the cache)``.

    Raises:
        InputError: an unreadable frame or mask; OutputError: the cache cannot be written.
    """
    from vpscli.engine.device import usable_cpus

    size = (int(size[0]), int(size[1]))
    files = _files(sources)
    sequences = _sequences(sources)
    key = store_key(sources, size)
    threads = threads or usable_cpus()
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cached = _load_cached(cache_dir, key, size, len(files))
        if cached is not None:
            return FrameStore(torch.from_numpy(cached[0]), torch.from_numpy(cached[1]), sequences, key), True
        frames_path, masks_path, index_path = _cache_paths(cache_dir, key, size)
        # Temporary names of this build's own: two runs on the same data may build it at once.
        with atomic_path(frames_path, unique=True) as ftmp, atomic_path(masks_path, unique=True) as mtmp:
            # Written straight into the files: the decoded set is never held twice in memory.
            frames = np.lib.format.open_memmap(ftmp, mode="w+", dtype=np.uint8, shape=(len(files), 3, *size))
            masks = np.lib.format.open_memmap(mtmp, mode="w+", dtype=np.uint8, shape=(len(files), *size))
            _fill(frames, masks, files, size, threads, progress)
            frames.flush(), masks.flush()
            del frames, masks
        write_text_atomic(
            index_path,
            json.dumps(
                {
                    "format": STORE_FORMAT,
                    "key": key,
                    "size": list(size),
                    "frames": len(files),
                    "sources": [str(s.root) for s in sources],
                }
            ),
            unique=True,
        )
        cached = _load_cached(cache_dir, key, size, len(files))
        if cached is None:  # the files just written cannot be read back
            raise InputError(
                "the training cache cannot be read back",
                path=cache_dir,
                fix="check the disk, or train with --no-cache",
            )
        return FrameStore(torch.from_numpy(cached[0]), torch.from_numpy(cached[1]), sequences, key), False
    frames = np.empty((len(files), 3, *size), np.uint8)
    masks = np.empty((len(files), *size), np.uint8)
    _fill(frames, masks, files, size, threads, progress)
    return FrameStore(torch.from_numpy(frames), torch.from_numpy(masks), sequences, key), False
