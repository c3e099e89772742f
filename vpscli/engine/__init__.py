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

import importlib

from vpscli.engine.options import ModelConfig, SegmentOptions

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

#: where each name lives; the modules that need torch load on first use, so that the command line reads
#: the options without loading it
_HOMES = {
    "segment_many": "many",
    "VideoReport": "run_loop",
    "segment_video": "run_loop",
    "Segmenter": "segmenter",
    "FrameResult": "video_run",
    "VideoRun": "video_run",
    "Window": "windows",
    "clip_windows": "windows",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"vpscli.engine.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
