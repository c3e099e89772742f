"""What a ``vps segment`` run is given, declared once: :class:`ModelConfig` (which model, on what device,
how it turns probabilities into masks) and :class:`SegmentOptions` (what is written, and how earlier
outputs are treated). Both are frozen, so one value can key a cache of models (a Ray worker's), be sent
to a worker as it is, and be varied per video with :func:`dataclasses.replace` (a manifest's columns).

:func:`check_options` refuses values that cannot work before any model is loaded or file written; the
command line maps its flags to these fields in one table (:mod:`vpscli.cli.commands.segment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vpscli.episodes import DEFAULT_MIN_PERSISTENCE
from vpscli.errors import UsageError

#: the longest --min-persistence: the writer holds up to N − 1 whole frames (image, probabilities, mask;
#: about 10 MB each at 1080p) until their run is decided, so N is bounded; 30 frames is over a second
#: at 25 fps, far beyond the ≤ 6-frame activations CADe systems suppress
MAX_MIN_PERSISTENCE = 30


@dataclass(frozen=True)
class ModelConfig:
    """The model a video is segmented with, and how (:meth:`vpscli.engine.Segmenter.from_config`).

    Example: ``Segmenter.from_config(ModelConfig("pns-plus", device="cpu", threshold=0.4))``.
    """

    #: a registered model's name (``vps models`` lists them); ``None``: the default model
    model: str | None = None
    #: a checkpoint file; ``None``: the model's verified bundled weights
    weights: str | Path | None = None
    #: ``auto``, ``cpu``, ``cuda``, ``cuda:N``
    device: str = "auto"
    #: ``auto``, ``fp32``, ``bf16``, ``fp16`` (torch autocast); ``int8`` with OpenVINO
    precision: str = "auto"
    #: probability at or above which a pixel is polyp
    threshold: float = 0.5
    #: clips per forward pass (models without clip-to-clip state)
    batch: int = 1
    #: wrap the model in ``torch.compile``
    compile: bool = False
    #: a ``torch.compile`` mode (implies ``compile``)
    compile_mode: str | None = None
    #: test-time augmentation: each clip's probabilities averaged with those of its mirror image
    tta: bool = False
    #: ``auto``, ``torch``, ``openvino``, ``onnxruntime`` (``None``: ``$VPS_BACKEND``, else ``auto``)
    backend: str | None = None
    #: where converted graphs are kept (``None``: ``$VPS_CACHE``, else ``~/.cache/vps``)
    cache_dir: str | Path | None = None
    #: ``precision="int8"``: a video or frame folder whose first frames calibrate the quantisation
    calibration: str | Path | None = None


@dataclass(frozen=True)
class SegmentOptions:
    """What to write. ``out_root/<source name>/`` receives one video's outputs.

    Example: ``segment_video(Segmenter("pns-plus"), open_source("a.mp4"), SegmentOptions("out", overlay=False))``.
    """

    out_root: Path = Path("vps-out")
    save_prob: bool = False
    overlay: bool = True
    resume: bool = False
    overwrite: bool = False
    #: shortest run of consecutive flagged frames whose masks are kept (1: every detection)
    min_persistence: int = DEFAULT_MIN_PERSISTENCE
    #: the user says the videos are polyp-free: flagged frames are false alarms (the summary's rates)
    expect_negative: bool = False
    #: the frame decision: a frame is flagged when its peak probability reaches this level (at least the
    #: threshold; a frame below it gets an empty mask); ``None``: the level calibrated for the weights on
    #: their model card, or, without one, when its mask at the threshold has a pixel
    presence: float | None = None


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
    if presence is not None and not (math.isfinite(presence) and threshold <= presence <= 1.0):
        raise UsageError(
            f"--presence must lie between the threshold ({threshold:g}) and 1, got {presence}",
            fix="give the peak probability a frame needs to count as showing a polyp, e.g. "
            "--presence 0.9 (leave it out for the level calibrated for the weights, or give the threshold: a frame "
            "counts when its mask has a pixel)",
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
