"""One video's inference state and what the inference driver yields for each frame.

:class:`VideoRun` holds a video's model state, its decoder thread (decode → resize to the model's
input, ahead of the model through a bounded queue) and its stage timings; :class:`FrameResult` is one
source frame's prediction; :class:`StageClock` times the work issued to a device.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterator, TypeVar

import numpy as np
import torch

from vpscli.engine.ahead import Ahead
from vpscli.engine.postprocess import SourceUpsampler
from vpscli.io.frames import Frame

#: decoded-and-resized frames buffered ahead of the model (enough to hide decode jitter;
#: each holds a full source frame, 6 MiB at 1080p, so more only costs memory)
DECODE_QUEUE_FRAMES = 8
T = TypeVar("T")


@dataclass(frozen=True)
class FrameResult:
    """The prediction for one source frame.

    Attributes:
        index, name, timestamp: from the source frame (name is the mask file stem).
        image: the source frame ``(H, W, 3)`` uint8 RGB (for overlays).
        prob: probability ``(H, W)`` uint8, ``floor(255·p)`` (the benchmark format); ``None`` when the
            run leaves the probability maps out (:attr:`VideoRun.probs`).
        mask: ``(H, W)`` bool, ``p ≥ threshold``.
        max_prob: the frame's largest probability in [0, 1].
        predicted: false for frames the caller asked to skip (resuming): ``prob`` and ``mask``
            are then ``None`` and ``max_prob`` is NaN — the caller has them already.
        mask_box: ``(x, y, w, h)`` bounding box of the mask, ``None`` when empty or not known.
        mask_area: mask pixels, ``None`` when not known (computed from ``mask`` then).
    """

    index: int
    name: str
    timestamp: float
    image: np.ndarray = field(repr=False)
    prob: np.ndarray | None = field(repr=False)
    mask: np.ndarray | None = field(repr=False)
    max_prob: float
    predicted: bool = True
    mask_box: tuple[int, int, int, int] | None = None
    mask_area: int | None = None


class Timings:
    """Seconds spent per stage, summed over threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {k: round(v, 4) for k, v in self.seconds.items()}


@dataclass
class ResizedFrame:
    """A decoded source frame and its copy at the model's input size (made on the decoder thread)."""

    frame: Frame
    resized: np.ndarray  # (h, w, 3) uint8 at the model's input size

    @property
    def index(self) -> int:
        return self.frame.index


class StageClock:
    """Time of work issued to ``device`` between construction and :meth:`stop`.

    On the CPU the wall time. On CUDA two events recorded on the current stream, read by
    :meth:`seconds` once a later wait has passed them (the post-processing's copy to the host):
    the device's own time, without the host waiting for it (a synchronize per clip would stall
    every stream, other videos' under ``--jobs`` included).
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        if self.cuda:
            self._start, self._end = (
                torch.cuda.Event(enable_timing=True),
                torch.cuda.Event(enable_timing=True),
            )
            self._start.record()
        else:
            self._t0 = time.perf_counter()
            self._t1: float | None = None

    def stop(self) -> None:
        if self.cuda:
            self._end.record()
        else:
            self._t1 = time.perf_counter()

    def seconds(self) -> float:
        if self.cuda:
            self._end.synchronize()  # already passed in the pipeline: returns at once
            return self._start.elapsed_time(self._end) / 1000.0
        assert self._t1 is not None, "StageClock.seconds() before stop()"
        return self._t1 - self._t0


class VideoRun:
    """Per-video inference state: the source, the model's state, the decoder thread, timings.

    Made by :meth:`Segmenter.init_state`; consumed by :meth:`Segmenter.run`. ``probs``: whether each
    :class:`FrameResult` carries its probability map; without them the upsampling computes only the
    region around the mask and the peak (:mod:`vpscli.engine.postprocess`), and masks, boxes, areas and
    peaks are the same bit for bit. It may be changed until the run starts.
    """

    def __init__(self, source, model_state, input_hw: tuple[int, int], probs: bool = True):
        self.source = source
        self.model_state = model_state
        self.input_hw = input_hw
        self.probs = probs
        self.timings = Timings()
        self.frames_out = 0
        #: frames the model ran on (owned frames of the clips computed; fewer than frames_out when resuming)
        self.frames_computed = 0
        #: ends every stage of the video (decoding, the model): an error, an interrupt or the last frame
        self.stop = threading.Event()
        self._stages: list[Ahead] = []
        self._upsamplers: dict[tuple, SourceUpsampler] = {}

    def upsampler(self, out_hw, in_hw, threshold: float, device) -> SourceUpsampler:
        """The :class:`SourceUpsampler` for one source size (made once per video and size)."""
        key = (tuple(out_hw), tuple(in_hw), self.probs)
        if key not in self._upsamplers:
            self._upsamplers[key] = SourceUpsampler(in_hw, out_hw, threshold, device, probs=self.probs)
        return self._upsamplers[key]

    def ahead(self, items: Iterator[T], size: int, name: str) -> Ahead[T]:
        """``items`` computed on their own thread, up to ``size`` ahead (:class:`Ahead`), stopped with the video."""
        stage = Ahead(items, size, stop=self.stop, name=f"{name}:{self.source.name}")
        self._stages.append(stage)
        return stage

    def start_decoding(self) -> None:
        self._decoded = self.ahead(self._decode(), DECODE_QUEUE_FRAMES, "decode")

    def _decode(self) -> Iterator[ResizedFrame]:
        import cv2

        h, w = self.input_hw
        it = iter(self.source)
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            t1 = time.perf_counter()
            resized = cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_LINEAR)
            self.timings.add("decode", t1 - t0)
            self.timings.add("preprocess", time.perf_counter() - t1)
            yield ResizedFrame(frame, resized)

    def decoded(self) -> Iterator[ResizedFrame]:
        """The decoded frames, in order (after :meth:`start_decoding`)."""
        return self._decoded

    def close(self) -> None:
        """Stop every stage (after the last frame, an error or an interrupt) and wait for their threads."""
        self.stop.set()
        for stage in self._stages:
            stage.close()
