"""An iterator computed ahead of its consumer on its own thread, through a bounded queue.

A video's pipeline runs its stages this way (:class:`~vpscli.engine.video_run.VideoRun`): decoding ahead
of the model, and on the CPU the model ahead of the post-processing, so that upsampling a clip's
predictions to the source size overlaps the model's next clip instead of delaying it.

Example::

    stop = threading.Event()
    frames = Ahead(decode(video), size=8, stop=stop, name="decode")
    for frame in frames:      # decoding runs on its own thread, up to 8 frames ahead
        ...
    frames.close()            # or stop.set() for every Ahead sharing the event, then close()
"""

from __future__ import annotations

import queue
import threading
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")

_END = object()
#: how often a waiting side looks at the stop event (seconds)
_POLL = 0.1


class _Raised:
    """An exception of the producer, handed to the consumer to re-raise in its own thread."""

    def __init__(self, error: BaseException):
        self.error = error


class Ahead(Generic[T]):
    """Iterate ``items`` on a thread named ``name``, up to ``size`` items ahead of the consumer.

    Items come out in order; an exception of ``items`` is re-raised by the consumer's ``next`` after the
    items before it. ``stop`` (shared by the stages of one video) ends both sides: the producer stops at
    its next item, a waiting consumer sees the end of the items. :meth:`close` sets it, waits for the
    thread and closes ``items`` there (its ``finally`` blocks run).
    """

    def __init__(
        self, items: Iterator[T], size: int, stop: threading.Event | None = None, name: str = "ahead"
    ):
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size, self.name = size, name
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self.stop = stop if stop is not None else threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def extra_repr(self) -> str:
        return f"name={self.name!r}, size={self.size}"

    def __repr__(self) -> str:
        return f"Ahead({self.extra_repr()})"

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(_Raised(e))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        while not self._done:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                if self.stop.is_set():
                    self._done = True
                continue
            if item is _END:
                self._done = True
            elif isinstance(item, _Raised):
                self._done = True
                raise item.error
            else:
                return item
        raise StopIteration

    def close(self, timeout: float = 10.0) -> None:
        """Stop the producer (and every stage sharing ``stop``) and wait for its thread."""
        self.stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)
