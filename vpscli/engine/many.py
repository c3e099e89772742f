"""Many videos with one model: :func:`segment_many` runs :func:`~vpscli.engine.run_loop.segment_video` for
each source, one at a time or several at once (threads sharing the model, each video with its own state,
outputs and, on CUDA, stream); a failing input does not stop the others.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from vpscli.engine.options import SegmentOptions, check_options
from vpscli.engine.run_loop import VideoReport, segment_video
from vpscli.engine.segmenter import Segmenter
from vpscli.errors import VpsError


def segment_many(
    segmenter: Segmenter,
    sources: list,
    opts: SegmentOptions,
    on_start: Callable | None = None,
    on_frame: Callable | None = None,
    on_done: Callable | None = None,
    jobs: int = 1,
) -> tuple[list[VideoReport], dict[str, VpsError]]:
    """Segment every source; a failing input does not stop the others.

    ``jobs`` videos run at once, each in its own thread with its own state, outputs and (on CUDA)
    stream, sharing the model: while one video decodes or writes, another's clips keep the device
    busy. Each video's frames go through exactly the computation of a one-at-a-time run.
    Callbacks (called from the video's thread): ``on_start(source)``, ``on_frame(source, result)``,
    ``on_done(source, report | None, error | None)``. On Ctrl-C or SIGTERM every running video
    stops at its next frame and is recorded ``interrupted``; then the interrupt is re-raised.

    Returns the reports of the finished/skipped inputs (in input order) and the errors of the failed ones.
    """
    from vpscli.engine.device import job_stream

    check_options(jobs=jobs, min_persistence=opts.min_persistence)
    stop = threading.Event()
    results: dict[int, VideoReport] = {}
    failures: dict[str, VpsError] = {}

    def one(i: int, source) -> None:
        def frame_done(result):
            if stop.is_set():  # another video was interrupted: stop here, as at a Ctrl-C
                raise KeyboardInterrupt
            if on_frame is not None:
                on_frame(source, result)

        if stop.is_set():
            return
        if on_start is not None:
            on_start(source)
        try:
            with job_stream(segmenter.placement):
                report = segment_video(segmenter, source, opts, on_frame=frame_done)
        except VpsError as e:
            failures[str(source.path)] = e
            if on_done is not None:
                on_done(source, None, e)
            return
        results[i] = report
        if on_done is not None:
            on_done(source, report, None)

    if jobs == 1:
        for i, source in enumerate(sources):
            one(i, source)
    else:
        _run_concurrently(one, sources, jobs, stop)
    return [results[i] for i in sorted(results)], failures


def _run_concurrently(one: Callable, sources: list, jobs: int, stop: threading.Event) -> None:
    """``one(i, source)`` for every source on ``jobs`` threads. The main thread waits in short steps
    (signals are handled there); on an interrupt it tells the videos to stop, waits for them to
    record it, and re-raises it. A worker's unexpected error is re-raised the same way."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="video") as pool:
        futures = [pool.submit(one, i, s) for i, s in enumerate(sources)]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()  # a worker's interrupt or bug: stop the others too
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            wait(futures)
            raise
