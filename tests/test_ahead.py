"""Stages computed ahead on their own threads: :class:`~vpscli.engine.ahead.Ahead`, and the model's thread
of :meth:`Segmenter.run` on the CPU (the same results as the model on the caller's thread; errors and
interrupts end every stage)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vpscli.engine.ahead import Ahead


def _stage_threads(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def test_items_come_in_order_and_no_more_than_size_ahead():
    made = []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    ahead = Ahead(items(), size=3, name="t-order")
    deadline = time.monotonic() + 10
    while len(made) < 4 and time.monotonic() < deadline:  # the producer fills the queue ...
        time.sleep(0.01)
    time.sleep(0.3)  # ... then waits, however long the consumer takes
    assert len(made) == 4  # 3 in the queue, 1 made and waiting to be put
    assert list(ahead) == list(range(20))
    ahead.close()
    assert not _stage_threads("t-order")


def test_an_error_is_raised_by_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("frame 3 is damaged")

    ahead = Ahead(items(), size=8, name="t-error")
    got = []
    with pytest.raises(ValueError, match="frame 3 is damaged"):
        for x in ahead:
            got.append(x)
    assert got == [1, 2]
    with pytest.raises(StopIteration):
        next(ahead)
    ahead.close()


def test_close_stops_the_producer_and_runs_its_cleanup():
    cleaned = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            cleaned.set()

    ahead = Ahead(endless(), size=2, name="t-close")
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert cleaned.is_set() and not _stage_threads("t-close")


def test_a_shared_stop_ends_a_waiting_consumer():
    stop = threading.Event()

    def slow():
        yield 0
        time.sleep(5)  # a stage that does not deliver its next item in time
        yield 1

    ahead = Ahead(slow(), size=2, stop=stop, name="t-stop")
    assert next(ahead) == 0
    threading.Timer(0.2, stop.set).start()
    t0 = time.perf_counter()
    with pytest.raises(StopIteration):
        next(ahead)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ValueError):
        Ahead(iter([]), size=0)


@pytest.mark.parametrize("model", ["pns-plus", "cffm"])
def test_the_model_thread_computes_what_the_caller_thread_computes(clip, weights, model):
    """Stateless and stateful models (PNS+'s anchor, CFFM's feature cache): the same probabilities, masks and
    peaks, bit for bit, with the model on its own thread (the CPU default) and on the caller's."""
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    seg = Segmenter(model, weights[model], device="cpu")
    assert seg.model_thread
    on_thread = list(seg.run(open_source(clip / "vid.mp4")))
    seg.model_thread = False
    on_caller = list(seg.run(open_source(clip / "vid.mp4")))
    assert [r.index for r in on_thread] == list(range(11)) == [r.index for r in on_caller]
    for a, b in zip(on_thread, on_caller):
        assert np.array_equal(a.prob, b.prob) and np.array_equal(a.mask, b.mask) and a.max_prob == b.max_prob
    assert sum(int(r.mask.any()) for r in on_thread) > 0
    assert not _stage_threads("model:") and not _stage_threads("decode:")


def test_a_model_error_reaches_the_caller_and_stops_the_decoder(clip, weights):
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    seg = Segmenter("pns-net", weights["pns-net"], device="cpu")
    forward, calls = seg._forward, []

    def failing(clip_tensor, state, **kw):
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise RuntimeError("out of memory in the second clip")
        return forward(clip_tensor, state, **kw)

    seg._forward = failing
    results = []
    with pytest.raises(RuntimeError, match="second clip"):
        for r in seg.run(open_source(clip / "vid.mp4")):
            results.append(r.index)
    assert results == [0, 1, 2, 3, 4]  # the first clip's frames, then the error
    assert calls[0].startswith("model:vid")  # the model ran on its own thread
    assert not _stage_threads("model:") and not _stage_threads("decode:")


def test_an_interrupt_in_the_caller_stops_the_model_and_decoder_threads(clip, weights):
    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    seg = Segmenter("pns-net", weights["pns-net"], device="cpu")
    forward, calls = seg._forward, []

    def slow(clip_tensor, state, **kw):  # the model still busy with a later clip when the caller stops
        calls.append(1)
        time.sleep(0.5 * (len(calls) > 1))
        return forward(clip_tensor, state, **kw)

    seg._forward = slow
    results = seg.run(open_source(clip / "vid.mp4"))
    assert next(results).index == 0
    assert _stage_threads("model:vid")
    results.close()  # what a KeyboardInterrupt in the caller's loop does to the generator
    assert not _stage_threads("model:") and not _stage_threads("decode:")
    assert len(calls) < 3  # the last clip was never started
