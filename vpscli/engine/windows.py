"""Clip windows over a stream of frames: the one windowing rule for every model, and how windows are
batched and planned when a run resumes (:func:`batched`, :func:`plan_batches`).

A model declares its clip length ``L`` (:class:`~vpscli.models.base.ModelSpec`). Frames are
grouped into consecutive, non-overlapping windows of ``L`` frames, each owning all its
frames. The stream's length need not be known in advance (header counts lie), so the
tail is decided when the stream ends:

- ``n ≥ L`` and ``r = n mod L > 0``: one more window of the **last L frames** (aligned to
  the end), owning only its last ``r`` frames — every frame is predicted exactly once, and
  every window the model sees is a full, real clip;
- ``n < L``: the frames padded to ``L`` by repeating the last one; padded positions get
  fresh increasing indices (the contract needs increasing indices) and are not owned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Window(Generic[T]):
    """One model step: ``items`` (``L`` of them), their ``indices`` in the video (strictly
    increasing), and ``owned`` — the positions in the window whose outputs are kept."""

    items: list[T]
    indices: list[int]
    owned: list[int]


def clip_windows(
    items: Iterable[T], clip_length: int, index_of=lambda item: item.index
) -> Iterator[Window[T]]:
    """Yield the windows of a stream of frames (see the module doc).

    Args:
        items: frames in order; ``index_of(item)`` gives the frame's index in the video.
        clip_length: ``L ≥ 1``.
    """
    if clip_length < 1:
        raise ValueError(f"clip_length must be at least 1, got {clip_length}")
    window: list[T] = []
    recent: deque[T] = deque(maxlen=clip_length)
    n = 0
    for item in items:
        window.append(item)
        recent.append(item)
        n += 1
        if len(window) == clip_length:
            yield Window(window, [index_of(i) for i in window], list(range(clip_length)))
            window = []
    if not window:
        return
    r = len(window)
    if n >= clip_length:
        tail = list(recent)
        yield Window(tail, [index_of(i) for i in tail], list(range(clip_length - r, clip_length)))
    else:
        last = index_of(window[-1])
        padded = window + [window[-1]] * (clip_length - r)
        indices = [index_of(i) for i in window] + list(range(last + 1, last + 1 + clip_length - r))
        yield Window(padded, indices, list(range(r)))


def batched(windows: Iterable[Window[T]], size: int) -> Iterator[list[Window[T]]]:
    """Consecutive windows in groups of ``size`` (the last group may be shorter): one forward pass each."""
    batch: list[Window[T]] = []
    for w in windows:
        batch.append(w)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def plan_batches(
    batches: Iterable[list[Window[T]]], skip: Callable[[T], bool] | None, replay: int | None
) -> Iterator[tuple[list[Window[T]], str]]:
    """Tag each batch ``predict``, ``replay`` (run only to rebuild the model's state for a later batch) or
    ``skip`` (every owned item is in ``skip`` and no later batch needs it), for resuming a run.

    Args:
        skip: the items whose outputs the caller already has (``None``: none).
        replay: owned frames the model must see again before a predicted batch to rebuild its state
            (:meth:`~vpscli.models.base.ModelSpec.replay_frames`; ``None``: every batch is computed).

    Batches are formed before skipping, so a resumed run groups clips exactly as an uninterrupted one
    and computes bit-identical outputs.
    """
    if skip is None or replay is None:
        for batch in batches:
            yield batch, "predict"
        return

    def owned(batch: list[Window[T]]) -> int:
        return sum(len(w.owned) for w in batch)

    held: deque[list[Window[T]]] = deque()  # skippable batches a later batch may still need
    held_frames = 0
    for batch in batches:
        if all(skip(w.items[i]) for w in batch for i in w.owned):
            held.append(batch)
            held_frames += owned(batch)
            while held and held_frames - owned(held[0]) >= replay:
                held_frames -= owned(held[0])
                yield held.popleft(), "skip"
        else:
            while held:
                yield held.popleft(), "replay"
            held_frames = 0
            yield batch, "predict"
    while held:
        yield held.popleft(), "skip"
