"""How training feeds each model: which frames a sample holds and how they are stepped.

Every sample is a span of consecutive frames of one case; ``positions`` are the frames of the
span that are used, and ``steps`` split them into the model calls of one training sample,
made on a fresh :class:`~vpscli.models.VideoState` in order (the same windowing as inference):

- **CFFM** (1 frame per step, references t−9, t−6, t−3 from the state's cache): the sample is
  the target and its references, positions 0, 3, 6, 9 of a 10-frame span, fed as *one* step with
  ``frame_indices = (0, 3, 6, 9)``. Inside one step the references come from the step itself,
  so gradients reach them (the cache of a multi-step sequence is detached); frame 9 sees exactly
  its t−9/t−6/t−3 references, the earlier ones the original's early-frame table. Every frame is
  supervised ("training samples them with the clip").
- **AEN** (clips of 3 + memory of 3 clips): ``memory_clips + 1`` consecutive clips (12 frames),
  one step per clip, so the last clip reads a full memory (and, for AEN+CFFM, cached references
  t−9…). Memory and cache are detached by the models: each clip's loss trains its own pass.
- **PNS+** (anchor + 5 frames): 5 consecutive frames in one step, plus the anchor (the case's
  first frame, as at inference; for stills an independently augmented view).
- **PNS-Net**: 5 consecutive frames, one step.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpscli.models import ModelSpec

__all__ = ["TrainWindow", "window_for"]


@dataclass(frozen=True)
class TrainWindow:
    """Frames of one training sample and their model steps.

    Attributes:
        positions: offsets in the sampled span of the frames used, ascending.
        steps: per model call, the ``frame_indices`` (a partition of ``positions``, in order).
        needs_anchor: the sample also carries an anchor frame.
    """

    positions: tuple[int, ...]
    steps: tuple[tuple[int, ...], ...]
    needs_anchor: bool

    @property
    def span(self) -> int:
        """Consecutive frames a sample covers."""
        return self.positions[-1] + 1

    @property
    def n_frames(self) -> int:
        """Frames (with masks) a sample holds, the anchor excluded."""
        return len(self.positions)

    def columns(self, step: int) -> list[int]:
        """Indices into the sample's frame axis of the frames of ``steps[step]``."""
        where = {p: i for i, p in enumerate(self.positions)}
        return [where[p] for p in self.steps[step]]


def window_for(spec: ModelSpec, aen_clips: int | None = None) -> TrainWindow:
    """The training window of a model (see the module doc).

    Args:
        spec: the model's spec.
        aen_clips: AEN models: clips per sample (default ``memory_clips + 1``).
    """
    t = spec.clip_length
    if spec.memory_clips:
        n = aen_clips or spec.memory_clips + 1
        positions = tuple(range(n * t))
        steps = tuple(tuple(range(i * t, (i + 1) * t)) for i in range(n))
    elif spec.ref_offsets:
        reach = max(-o for o in spec.ref_offsets)
        positions = tuple(sorted({reach + o for o in spec.ref_offsets} | {reach}))
        steps = (positions,)
    else:
        positions = tuple(range(t))
        steps = (positions,)
    return TrainWindow(positions, steps, spec.needs_anchor)
