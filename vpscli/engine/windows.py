"""Clip windows over a stream of frames: the one windowing rule for every model.

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
from typing import Generic, Iterable, Iterator, TypeVar

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
