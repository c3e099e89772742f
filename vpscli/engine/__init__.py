"""Inference over whole videos: the driver every model shares.

- :class:`Segmenter` — a model on a device; ``run(source)`` yields a :class:`FrameResult`
  per source frame (probability, mask at the source resolution);
- :class:`ModelConfig` / :class:`SegmentOptions` — which model runs how, and what is written
  (:mod:`vpscli.engine.options`); ``Segmenter.from_config(config)``;
- :func:`segment_video` / :func:`segment_many` — ``vps segment``'s outputs (masks, probs,
  overlay, frames.csv, run.json) with resume (:mod:`vpscli.engine.run_loop`, :mod:`vpscli.engine.many`);
- :func:`clip_windows` — the windowing rule.

Example::

    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    seg = Segmenter("pns-plus", weights="weights/pns-plus.safetensors", device="auto")
    for r in seg.run(open_source("video.mp4")):
        r.index, r.mask, r.max_prob
"""

from vpscli.engine.many import segment_many
from vpscli.engine.options import ModelConfig, SegmentOptions
from vpscli.engine.run_loop import VideoReport, segment_video
from vpscli.engine.segmenter import Segmenter
from vpscli.engine.video_run import FrameResult, VideoRun
from vpscli.engine.windows import Window, clip_windows

__all__ = [
    "FrameResult",
    "ModelConfig",
    "Segmenter",
    "SegmentOptions",
    "VideoReport",
    "VideoRun",
    "Window",
    "clip_windows",
    "segment_many",
    "segment_video",
]
