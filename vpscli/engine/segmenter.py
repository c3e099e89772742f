"""The inference driver: any model of the zoo over whole videos, clip by clip.

:class:`Segmenter` holds a model on a device; :meth:`Segmenter.run` streams one source and
yields a :class:`FrameResult` per source frame, in order, at the source resolution. The
per-video state is explicit (:class:`VideoRun`, made by :meth:`Segmenter.init_state` —
the model's :class:`~vpscli.models.base.VideoState` plus the decoder thread), so two videos
never share state.

Pipeline (bounded queues, so memory does not grow with the video's length)::

    decoder thread: decode → resize to the model's input → queue ──▶ model thread (CPU): windows → batch
    → forward (autocast) → queue ──▶ caller's thread: sigmoid → bilinear upsampling to the source size,
    threshold, only where something can be non-zero (:mod:`vpscli.engine.postprocess`) → results

Windowing follows :func:`vpscli.engine.windows.clip_windows` for every model.

Where each stage runs, and why (measured at 1080p, ``benchmarks/bench_segment.py --model-free``):

- decoding (PyAV, frame threads) and the resize to the model's input (OpenCV, 0.5 ms a frame) on the
  decoder thread: the device receives the small uint8 frames (0.3 MB instead of 6 MB at 1080p), and the
  CPU and CUDA models see the same input pixels;
- normalisation, the model, sigmoid, upsampling and threshold on the model's device; the host waits for
  the device twice per clip (:mod:`vpscli.engine.postprocess`), never per frame. On the CPU the model runs
  on its own thread (:class:`~vpscli.engine.ahead.Ahead`), so that upsampling a clip (~5 ms a 1080p frame)
  overlaps the next clip's forward pass instead of delaying it; on CUDA the host only queues the work;
- overlay drawing on the CPU, confined to the masks' bounding box (about 2 ms a frame): drawing on the
  device would need each full frame uploaded and the overlay downloaded (12 MB a frame);
- PNG encoding on a pool and H.264 encoding in ffmpeg, over the machine's cores.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from vpscli.engine.device import Placement, check_compile_mode, place_model
from vpscli.engine.options import ModelConfig, check_options
from vpscli.engine.postprocess import FramePrediction
from vpscli.engine.video_run import FrameResult, ResizedFrame, StageClock, VideoRun
from vpscli.engine.windows import Window, batched, clip_windows, plan_batches
from vpscli.errors import UsageError
from vpscli.io.frames import Frame


def _loaded_network(net, weights):
    """A network built by the caller, with ``weights`` loaded into it when given."""
    from vpscli.models import load_checkpoint
    from vpscli.weights import sha256_file
    from vpscli.weights.store import LoadedModel

    if weights is None:
        return LoadedModel(net)
    load_checkpoint(net, weights)
    return LoadedModel(net, Path(weights), sha256_file(weights))


def _frame_of(skip: Callable[[Frame], bool]) -> Callable[[ResizedFrame], bool]:
    """``skip`` of a decoded frame, asked of the window item that holds it."""
    return lambda item: skip(item.frame)


#: clips the model runs ahead of the post-processing on the CPU (each holds a clip's logits: ~1.5 MB)
MODEL_QUEUE_CLIPS = 2


class Segmenter:
    """A model placed on a device, ready to segment videos.

    Example: ``for r in Segmenter("pns-plus", device="cuda").run(open_source("video.mp4")): r.mask``; the same
    from a configuration: ``Segmenter.from_config(ModelConfig("pns-plus", device="cuda"))``.

    Args:
        model: a :class:`~vpscli.weights.LoadedModel` (from :func:`~vpscli.weights.load_model`:
            loaded once, shared by several segmenters), a registered model's name (``vps models``
            lists them; ``None``: the default model) or a built
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
        backend: ``auto`` (OpenVINO on a CPU where it is installed, else torch), ``torch``,
            ``openvino``, ``onnxruntime`` (:mod:`vpscli.backends`; ``None``: ``$VPS_BACKEND`` or ``auto``).
        cache_dir: where converted graphs are kept (default ``~/.cache/vps``).
        calibration: ``precision="int8"``: videos or frames like the ones segmented (any input of
            ``vps segment``: a file, a frame folder, a SUN-SEG root), whose first
            :data:`vpscli.engine.int8.CALIBRATION_FRAMES` frames calibrate the quantisation.
        on_convert: called with a one-line message before a compiled backend converts the model (seconds,
            once per weights; ``vps segment`` prints it), never when the converted model is loaded.
    """

    #: on the CPU, run the model on its own thread ahead of the post-processing (``False``: both on the
    #: caller's thread, as on CUDA, where the host only queues the model's work)
    model_thread = True

    def __init__(
        self,
        model=None,
        weights: str | Path | None = None,
        *,
        device: str = ModelConfig.device,
        precision: str = ModelConfig.precision,
        threshold: float = ModelConfig.threshold,
        batch: int = ModelConfig.batch,
        compile: bool = ModelConfig.compile,
        compile_mode: str | None = ModelConfig.compile_mode,
        tta: bool = ModelConfig.tta,
        backend: str | None = ModelConfig.backend,
        cache_dir: str | Path | None = ModelConfig.cache_dir,
        calibration: str | Path | None = ModelConfig.calibration,
        on_convert: Callable[[str], None] | None = None,
    ):
        from vpscli.backends import choose_backend
        from vpscli.engine.tta import MirrorAveraged
        from vpscli.models import VideoModel
        from vpscli.weights.store import LoadedModel, load_model

        check_options(threshold=threshold, batch=batch)
        check_compile_mode(compile_mode)
        choice = choose_backend(
            backend, device, precision, compiling=bool(compile or compile_mode), calibration=calibration
        )
        #: what runs the model: ``torch``, ``openvino`` or ``onnxruntime``, at ``precision``
        self.backend, self.precision = choice.backend, choice.precision
        note = "; ".join(n for n in (choice.placement.note, choice.note) if n) or None
        self.placement: Placement = replace(choice.placement, note=note)
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
        self.spec = net.spec
        if self.backend != "torch":
            from vpscli.backends.graphs import covers

            if not covers(net):
                if not choice.automatic:
                    raise UsageError(
                        f"--backend {self.backend} runs the registered models, not this {type(net).__name__}",
                        fix="use --backend torch",
                    )
                self.backend, self.precision = "torch", self.placement.precision
        if self.backend != "torch" and choice.auto_precision:
            from vpscli.backends import card_precision

            self.precision, why = card_precision(self.backend, model.entry)
            if why:
                self.placement = replace(
                    self.placement, note="; ".join(n for n in (self.placement.note, why) if n)
                )
        self.compiled = (compile_mode or "default") if (compile or compile_mode) else False
        stateful = bool(self.spec.ref_offsets) or self.spec.memory_clips > 0
        self.batch = 1 if stateful else batch
        ignored = f"--batch {batch} ignored: {self.spec.name} carries state from clip to clip"
        self.batch_note = ignored if stateful and batch > 1 else None
        #: the compiled backend's version, CPU threads, graphs' cache folder, whether they were converted
        #: now (``None`` … ``False`` when torch runs the model, on torch's threads)
        self.backend_version: str | None = None
        self.compiled_threads: int | None = None
        self.graph_cache: Path | None = None
        self.graphs_built = False
        self.on_convert = on_convert
        if self.backend == "torch":
            runs = MirrorAveraged(net) if self.tta else net
            self.model, self._forward = place_model(runs, self.placement, compile=compile, mode=compile_mode)
        else:
            compiled = self._compile(net, cache_dir, calibration)
            self.backend_version, self.compiled_threads = compiled.version, compiled.threads
            self.graph_cache, self.graphs_built = compiled.cache_entry, compiled.built
            self.model = MirrorAveraged(compiled) if self.tta else compiled
            self._forward = self.model

    def _compile(self, net, cache_dir, calibration):
        """``net`` compiled for the backend at the chosen precision (int8: :mod:`vpscli.engine.int8`)."""
        from vpscli.backends import compile_model

        if self.precision == "int8":
            from vpscli.engine.int8 import calibrated_int8

            return calibrated_int8(self, net, cache_dir, calibration)
        sha = self.loaded.weights_sha256
        return compile_model(
            net,
            self.backend,
            precision=self.precision,
            weights_sha256=sha,
            cache_dir=cache_dir,
            on_convert=self.on_convert,
        )

    @property
    def backend_text(self) -> str:
        """``openvino 2026.4.1 fp32``, ``torch 2.13.0 bf16``: what computed the probabilities."""
        version = self.backend_version or torch.__version__
        return f"{self.backend} {version} {self.precision}"

    @classmethod
    def from_config(cls, config: ModelConfig, on_convert: Callable[[str], None] | None = None) -> "Segmenter":
        """The segmenter ``config`` describes (its model loaded with its weights, placed on its device);
        ``on_convert`` as in :class:`Segmenter`."""
        return cls(
            config.model,
            config.weights,
            device=config.device,
            precision=config.precision,
            threshold=config.threshold,
            batch=config.batch,
            compile=config.compile,
            compile_mode=config.compile_mode,
            tta=config.tta,
            backend=config.backend,
            cache_dir=config.cache_dir,
            calibration=config.calibration,
            on_convert=on_convert,
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
    def card_presence(self) -> float | None:
        """The bundled weights' calibrated frame-decision level (their model card's), else ``None``."""
        return self.weights_entry.presence if self.weights_entry is not None else None

    @property
    def weights_note(self) -> str | None:
        """The bundled weights' model-card line (what they are good for), if they carry one."""
        return self.loaded.note

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.spec.input_size)

    def init_state(self, source, probs: bool = True) -> VideoRun:
        """A fresh per-video state for ``source`` (a :mod:`vpscli.io.sources` source); ``probs=False``:
        the frames carry no probability map (``FrameResult.prob`` is ``None``), which makes the upsampling
        to the source size cheaper (:class:`VideoRun`)."""
        return VideoRun(source, self.model.init_state(), self.input_size, probs)

    def _tensor(self, items: list[ResizedFrame]) -> torch.Tensor:
        """Window frames → ``(T, 3, h, w)`` normalised float on the device."""
        x = torch.from_numpy(np.stack([it.resized for it in items])).to(
            self.placement.device, non_blocking=True
        )
        return self.model.preprocess(x.permute(0, 3, 1, 2))

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
        steps = self._steps(run, skip)
        if self.placement.device.type == "cpu" and self.model_thread:
            steps = run.ahead(steps, MODEL_QUEUE_CLIPS, "model")
        try:
            for batch, mode, logits, clock in steps:
                if mode != "predict":
                    yield from self._skipped(run, batch)
                    continue
                assert logits is not None and clock is not None, "a predicted batch has its logits"
                outputs = [list(self._postprocess(run, window, logits[b])) for b, window in enumerate(batch)]
                run.timings.add("model", clock.seconds())  # the post-processing waited for the device
                for results in outputs:
                    yield from results
        finally:
            run.close()

    def _steps(
        self, run: VideoRun, skip: Callable[[Frame], bool] | None
    ) -> Iterator[tuple[list[Window[ResizedFrame]], str, torch.Tensor | None, StageClock | None]]:
        """The model over the video's batches of windows, in order: ``(batch, mode, logits, clock)`` with
        ``logits`` ``(B, T, 1, h, w)`` of the batch's real windows (``None`` for a skipped batch) and the
        clock of their computation; ``mode`` as :func:`~vpscli.engine.windows.plan_batches`."""
        spec = self.spec
        anchor, first = None, None
        windows = clip_windows(run.decoded(), spec.clip_length)
        for batch, mode in plan_batches(
            batched(windows, self.batch), None if skip is None else _frame_of(skip), spec.replay_frames()
        ):
            if first is None:
                first = batch[0].items[0]  # the video's frame 0 (the first window starts there)
            if mode == "skip":
                yield batch, mode, None, None
                continue
            n_real = len(batch)
            full = batch + [batch[-1]] * (self.batch - n_real)  # keep B constant (state shapes)
            clock = StageClock(self.placement.device)
            clips = [self._tensor(w.items) for w in full]
            # (B, T, 3, h, w); a single clip is not copied
            clip = clips[0][None] if len(clips) == 1 else torch.stack(clips)
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
            yield batch, mode, logits[:n_real], clock

    @staticmethod
    def _skipped(run: VideoRun, batch: list[Window[ResizedFrame]]) -> Iterator[FrameResult]:
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
        self, run: VideoRun, window: Window[ResizedFrame], logits: torch.Tensor
    ) -> Iterator[FrameResult]:
        """Owned frames of one window: sigmoid, bilinear upsampling to the source size, threshold
        (:class:`~vpscli.engine.postprocess.SourceUpsampler`: only where something can be non-zero)."""
        t0 = time.perf_counter()
        owned = window.owned
        frames = [window.items[i].frame for i in owned]
        preds: dict[int, FramePrediction] = {}  # by position in frames, every one filled below
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
        for k, frame in enumerate(frames):
            pred = preds[k]
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
