"""The inference driver: any model of the zoo over whole videos, clip by clip.

:class:`Segmenter` holds a model on a device; :meth:`Segmenter.run` streams one source and
yields a :class:`FrameResult` per source frame, in order, at the source resolution. The
per-video state is explicit (:class:`VideoRun`, made by :meth:`Segmenter.init_state` —
the model's :class:`~vpscli.models.base.VideoState` plus the decoder thread), so two videos
never share state.

Pipeline (bounded queues, so memory does not grow with the video's length)::

    decoder thread: decode → resize to the model's input → queue ──▶ model: windows → batch
    → forward (autocast) → sigmoid → bilinear upsampling to the source size, threshold, only where
    something can be non-zero (:mod:`vpscli.engine.postprocess`) ──▶ caller

Windowing follows :func:`vpscli.engine.windows.clip_windows` for every model.

Where each stage runs, and why (measured at 1080p, ``benchmarks/bench_segment.py --model-free``):

- decoding (PyAV, frame threads) and the resize to the model's input (OpenCV, 0.5 ms a frame) on the
  decoder thread: the device receives the small uint8 frames (0.3 MB instead of 6 MB at 1080p), and the
  CPU and CUDA models see the same input pixels;
- normalisation, the model, sigmoid, upsampling and threshold on the model's device; the host waits for
  the device twice per clip (:mod:`vpscli.engine.postprocess`), never per frame;
- overlay drawing on the CPU, confined to the masks' bounding box (about 2 ms a frame): drawing on the
  device would need each full frame uploaded and the overlay downloaded (12 MB a frame);
- PNG encoding on a pool and H.264 encoding in ffmpeg, over the machine's cores.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from vpscli.engine.device import Placement, check_compile_mode, place_model, resolve_placement
from vpscli.engine.postprocess import FramePrediction, SourceUpsampler
from vpscli.engine.windows import Window, clip_windows
from vpscli.errors import UsageError
from vpscli.io.frames import Frame

#: decoded-and-resized frames buffered ahead of the model (enough to hide decode jitter;
#: each holds a full source frame, 6 MiB at 1080p, so more only costs memory)
DECODE_QUEUE_FRAMES = 8
_END = object()


@dataclass(frozen=True)
class FrameResult:
    """The prediction for one source frame.

    Attributes:
        index, name, timestamp: from the source frame (name is the mask file stem).
        image: the source frame ``(H, W, 3)`` uint8 RGB (for overlays).
        prob: probability ``(H, W)`` uint8, ``floor(255·p)`` (the benchmark format).
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

    def __init__(self):
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {k: round(v, 4) for k, v in self.seconds.items()}


@dataclass
class _Decoded:
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
        return self._t1 - self._t0


class VideoRun:
    """Per-video inference state: the source, the model's state, the decoder thread, timings.

    Made by :meth:`Segmenter.init_state`; consumed by :meth:`Segmenter.run`.
    """

    def __init__(self, source, model_state, input_hw: tuple[int, int]):
        self.source = source
        self.model_state = model_state
        self.input_hw = input_hw
        self.timings = Timings()
        self.frames_out = 0
        #: frames the model ran on (owned frames of the clips computed; fewer than frames_out when resuming)
        self.frames_computed = 0
        self._queue: queue.Queue = queue.Queue(maxsize=DECODE_QUEUE_FRAMES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._upsamplers: dict[tuple, SourceUpsampler] = {}

    def upsampler(self, out_hw, in_hw, threshold: float, device) -> SourceUpsampler:
        """The :class:`SourceUpsampler` for one source size (made once per video and size)."""
        key = (tuple(out_hw), tuple(in_hw))
        if key not in self._upsamplers:
            self._upsamplers[key] = SourceUpsampler(in_hw, out_hw, threshold, device)
        return self._upsamplers[key]

    def start_decoding(self) -> None:
        self._thread = threading.Thread(target=self._decode, name=f"decode:{self.source.name}", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        import cv2

        h, w = self.input_hw
        try:
            it = iter(self.source)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                resized = cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_LINEAR)
                self.timings.add("decode", t1 - t0)
                self.timings.add("preprocess", time.perf_counter() - t1)
                if not self._put(_Decoded(frame, resized)):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(e)

    def decoded(self) -> Iterator[_Decoded]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the decoder (after an error or an interrupt) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


#: the longest --min-persistence: the writer holds up to N − 1 whole frames (image, probabilities, mask;
#: about 10 MB each at 1080p) until their run is decided, so N is bounded; 30 frames is over a second
#: at 25 fps, far beyond the ≤ 6-frame activations CADe systems suppress
MAX_MIN_PERSISTENCE = 30


def check_options(
    *,
    threshold: float = 0.5,
    batch: int = 1,
    fps: float | None = None,
    jobs: int = 1,
    min_persistence: int = 1,
    presence: float | None = None,
) -> None:
    """Refuse option values that cannot work, before any model is loaded or file written."""
    import math

    if presence is not None and not (math.isfinite(presence) and threshold <= presence <= 1.0):
        raise UsageError(
            f"--presence must lie between the threshold ({threshold:g}) and 1, got {presence}",
            fix="give the peak probability a frame needs to count as showing a polyp, e.g. "
            "--presence 0.9 (leave it out: a frame counts when its mask has a pixel)",
        )

    if not 1 <= min_persistence <= MAX_MIN_PERSISTENCE:
        raise UsageError(
            f"--min-persistence must be between 1 and {MAX_MIN_PERSISTENCE} frames, got {min_persistence}",
            fix="give the shortest run of consecutive flagged frames to keep, e.g. --min-persistence 3 "
            "(1 keeps every detection)",
        )
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise UsageError(f"--threshold must be between 0 and 1, got {threshold}")
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= 1000):
        raise UsageError(
            f"--fps must be a frame rate in (0, 1000], got {fps}",
            fix="give the frame rate the frames were recorded at, e.g. --fps 25",
        )


def _loaded_network(net, weights):
    """A network built by the caller, with ``weights`` loaded into it when given."""
    from vpscli.models import load_checkpoint
    from vpscli.weights import sha256_file
    from vpscli.weights.store import LoadedModel

    if weights is None:
        return LoadedModel(net)
    load_checkpoint(net, weights)
    return LoadedModel(net, Path(weights), sha256_file(weights))


class Segmenter:
    """A model placed on a device, ready to segment videos.

    Example: ``for r in Segmenter("pns-plus", device="cuda").run(open_source("video.mp4")): r.mask``.

    Args:
        model: a :class:`~vpscli.weights.LoadedModel` (from :func:`~vpscli.weights.load_model`:
            loaded once, shared by several segmenters), a registry name (``aen-cffm``, ``cffm``,
            ``pns-plus``, ``aen-pns-plus``, ``pns-net``; ``None``: the default model) or a built
            :class:`~vpscli.models.base.VideoModel`.
        weights: with a name or a network, a checkpoint file (ours or an official ``.pth``);
            ``None`` uses the verified bundled weights of the model and refuses to run without them.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16``, ``fp16`` (autocast).
        threshold: probability at or above which a pixel is polyp.
        batch: clips per forward pass, for models whose clips do not depend on each other
            (no feature cache or memory); others run one clip at a time.
        compile: wrap the model in ``torch.compile``.
        compile_mode: a ``torch.compile`` mode (:data:`~vpscli.engine.device.COMPILE_MODES`; implies ``compile``).
        tta: test-time augmentation: average the probabilities of each clip and its mirror image
            (:class:`~vpscli.engine.tta.MirrorAveraged`; two forward passes per clip).
    """

    def __init__(
        self,
        model=None,
        weights: str | Path | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        threshold: float = 0.5,
        batch: int = 1,
        compile: bool = False,
        compile_mode: str | None = None,
        tta: bool = False,
    ):
        from vpscli.engine.tta import MirrorAveraged
        from vpscli.models import VideoModel
        from vpscli.weights.store import LoadedModel, load_model

        check_options(threshold=threshold, batch=batch)
        check_compile_mode(compile_mode)
        self.placement: Placement = resolve_placement(device, precision)
        self.threshold = float(threshold)
        if isinstance(model, VideoModel):
            model = _loaded_network(model, weights)
        elif not isinstance(model, LoadedModel):
            model = load_model(model, weights)
        elif weights is not None:
            raise UsageError("weights are already loaded into this model: pass weights to load_model")
        #: the network, its weights file, their sha256 and bundled model card (``LoadedModel``)
        self.loaded = model
        net = model.net
        self.tta = bool(tta)
        runs = MirrorAveraged(net) if self.tta else net
        self.model, self._forward = place_model(runs, self.placement, compile=compile, mode=compile_mode)
        self.spec = net.spec
        self.compiled = (compile_mode or "default") if (compile or compile_mode) else False
        stateful = bool(self.spec.ref_offsets) or self.spec.memory_clips > 0
        self.batch = 1 if stateful else batch
        self.batch_note = (
            f"--batch {batch} ignored: {self.spec.name} carries state from clip to clip"
            if stateful and batch > 1
            else None
        )

    @property
    def weights_path(self) -> Path | None:
        return self.loaded.weights_path

    @property
    def weights_sha256(self) -> str | None:
        return self.loaded.weights_sha256

    @property
    def weights_entry(self):
        """The bundled weights' manifest entry (:class:`~vpscli.weights.WeightsEntry`), else ``None``."""
        return self.loaded.entry

    @property
    def weights_note(self) -> str | None:
        """The bundled weights' model-card line (what they are good for), if they carry one."""
        return self.loaded.note

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.spec.input_size)

    def init_state(self, source) -> VideoRun:
        """A fresh per-video state for ``source`` (a :mod:`vpscli.io.sources` source)."""
        return VideoRun(source, self.model.init_state(), self.input_size)

    def _tensor(self, items: list[_Decoded]) -> torch.Tensor:
        """Window frames → ``(T, 3, h, w)`` normalised float on the device."""
        x = torch.from_numpy(np.stack([it.resized for it in items])).to(
            self.placement.device, non_blocking=True
        )
        return self.model.preprocess(x.permute(0, 3, 1, 2))

    def _batches(self, windows: Iterator[Window[_Decoded]]) -> Iterator[list[Window[_Decoded]]]:
        batch: list[Window[_Decoded]] = []
        for w in windows:
            batch.append(w)
            if len(batch) == self.batch:
                yield batch
                batch = []
        if batch:
            yield batch

    def _plan(
        self, batches: Iterator[list[Window[_Decoded]]], skip: Callable[[Frame], bool] | None
    ) -> Iterator[tuple[list[Window[_Decoded]], str]]:
        """Tag each batch ``predict``, ``replay`` (run only to rebuild the state for a later batch)
        or ``skip`` (every owned frame is in ``skip`` and no later batch needs it).

        Batches are formed before skipping, so a resumed run groups clips exactly as an
        uninterrupted one and computes bit-identical outputs.
        """
        replay = self.spec.replay_frames()
        if skip is None or replay is None:
            for batch in batches:
                yield batch, "predict"
            return

        def owned(batch):
            return sum(len(w.owned) for w in batch)

        held: deque[list[Window[_Decoded]]] = deque()  # skippable batches a later batch may still need
        held_frames = 0
        for batch in batches:
            if all(skip(w.items[i].frame) for w in batch for i in w.owned):
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

    def run(
        self, source, state: VideoRun | None = None, skip: Callable[[Frame], bool] | None = None
    ) -> Iterator[FrameResult]:
        """Segment every frame of ``source``; yields one :class:`FrameResult` per frame, in order.

        Args:
            state: from :meth:`init_state` (default: a fresh one).
            skip: frames whose outputs the caller already has (resuming an interrupted run). Clips
                whose frames are all skipped are not run unless a later clip needs them to rebuild
                the model's state (:meth:`ModelSpec.replay_frames`); skipped frames are yielded with
                ``predicted=False``.
        """
        run = state or self.init_state(source)
        run.start_decoding()
        spec = self.spec
        anchor, first = None, None
        try:
            for batch, mode in self._plan(self._batches(clip_windows(run.decoded(), spec.clip_length)), skip):
                if first is None:
                    first = batch[0].items[0]  # the video's frame 0 (the first window starts there)
                if mode == "skip":
                    yield from self._skipped(run, batch)
                    continue
                n_real = len(batch)
                full = batch + [batch[-1]] * (self.batch - n_real)  # keep B constant (state shapes)
                clock = StageClock(self.placement.device)
                clip = torch.stack([self._tensor(w.items) for w in full])  # (B, T, 3, h, w)
                if spec.needs_anchor and anchor is None:
                    # frame 0, once for every clip of the batch (even when the clips that hold it
                    # were skipped): the model encodes it alone and shares it across the batch
                    anchor = self._tensor([first])
                with torch.inference_mode(), self.placement.autocast():
                    logits, run.model_state = self._forward(
                        clip, run.model_state, frame_indices=full[0].indices, anchor=anchor
                    )
                clock.stop()
                run.frames_computed += sum(len(w.owned) for w in batch)
                if mode == "replay":
                    yield from self._skipped(run, batch)
                    continue
                outputs = [
                    list(self._postprocess(run, window, logits[b])) for b, window in enumerate(batch[:n_real])
                ]
                run.timings.add("model", clock.seconds())  # the post-processing waited for the device
                for results in outputs:
                    yield from results
        finally:
            run.close()

    @staticmethod
    def _skipped(run: VideoRun, batch: list[Window[_Decoded]]) -> Iterator[FrameResult]:
        for window in batch:
            for i in window.owned:
                frame = window.items[i].frame
                run.frames_out += 1
                yield FrameResult(
                    frame.index,
                    frame.name,
                    frame.timestamp,
                    frame.image,
                    None,
                    None,
                    float("nan"),
                    predicted=False,
                )

    def _postprocess(
        self, run: VideoRun, window: Window[_Decoded], logits: torch.Tensor
    ) -> Iterator[FrameResult]:
        """Owned frames of one window: sigmoid, bilinear upsampling to the source size, threshold
        (:class:`~vpscli.engine.postprocess.SourceUpsampler`: only where something can be non-zero)."""
        t0 = time.perf_counter()
        owned = window.owned
        frames = [window.items[i].frame for i in owned]
        preds: list[FramePrediction | None] = [None] * len(frames)
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)  # frame folders may mix sizes
        for k, frame in enumerate(frames):
            by_size[frame.image.shape[:2]].append(k)
        for size, ks in by_size.items():
            for k, pred in zip(
                ks,
                run.upsampler(size, tuple(logits.shape[-2:]), self.threshold, self.placement.device)(
                    logits[[owned[k] for k in ks]]
                ),
            ):
                preds[k] = pred
        run.timings.add("upsample", time.perf_counter() - t0)
        for frame, pred in zip(frames, preds):
            run.frames_out += 1
            yield FrameResult(
                frame.index,
                frame.name,
                frame.timestamp,
                frame.image,
                pred.prob,
                pred.mask,
                pred.max_prob,
                mask_box=pred.box,
                mask_area=pred.area,
            )
