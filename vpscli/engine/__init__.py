"""Inference over whole videos: the driver every model shares.

- :class:`Segmenter` — a model on a device; ``run(source)`` yields a :class:`FrameResult`
  per source frame (probability, mask at the source resolution);
- :func:`segment_video` / :func:`segment_many` — ``vps segment``'s outputs (masks, probs,
  overlay, frames.csv, run.json) with resume;
- :func:`clip_windows` — the windowing rule.

Example::

    from vpscli.engine import Segmenter
    from vpscli.io.sources import open_source

    seg = Segmenter("pns-plus", weights="weights/pns-plus.safetensors", device="auto")
    for r in seg.run(open_source("video.mp4")):
        r.index, r.mask, r.max_prob
"""

from vpscli.engine.outputs import SegmentOptions, VideoReport, segment_many, segment_video
from vpscli.engine.segmenter import FrameResult, Segmenter, VideoRun
from vpscli.engine.windows import Window, clip_windows

__all__ = [
    "FrameResult",
    "Segmenter",
    "SegmentOptions",
    "VideoReport",
    "VideoRun",
    "Window",
    "clip_windows",
    "segment_many",
    "segment_video",
]
