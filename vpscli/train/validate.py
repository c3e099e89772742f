"""Validation with the ``vps evaluate`` metrics (toolbox protocol) on held-out clips.

Each case is run by ``vps segment``'s own :class:`~vpscli.engine.segmenter.Segmenter`: a fresh
state, the one windowing rule of :func:`vpscli.engine.windows.clip_windows`, the case's first
frame as the anchor, probabilities upsampled to the frame size and quantised to 8 bits exactly
as saved predictions are (so validation scores what ``vps segment`` + ``vps evaluate`` would,
by construction). They are scored per frame with
:func:`vpscli.metrics.score_arrays`; frames are ordered and trimmed (first and last dropped)
as the toolbox does, then averaged frame → case → split (:mod:`vpscli.metrics.aggregate`).
Negative folders (no GT) give ``neg_clean``: the share of frames with an empty mask at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from vpscli.io.sources import FrameFolderSource
from vpscli.metrics.aggregate import SequenceAccumulator, aggregate_sequences
from vpscli.metrics.ordering import evaluated_frames, sort_frames
from vpscli.metrics.scoring import score_arrays
from vpscli.train.sources import DataSource, Sequence
from vpscli.train.store import read_binary_mask

__all__ = ["VAL_METRICS", "HIGHER_IS_BETTER", "ValidationResult", "validate"]

#: What validation reports (keys of :mod:`vpscli.metrics.keys`).
VAL_METRICS = ("maxDice", "meanDice", "Smeasure", "MAE", "maxIoU")
_FAMILIES = frozenset({"smeasure", "mae", "medical"})
HIGHER_IS_BETTER = {
    "maxDice": True,
    "meanDice": True,
    "Smeasure": True,
    "MAE": False,
    "maxIoU": True,
    "neg_clean": True,
}


@dataclass
class ValidationResult:
    """Split-level scores (``metrics``: key → value) and frames scored."""

    metrics: dict[str, float] = field(default_factory=dict)
    n_frames: int = 0
    n_sequences: int = 0


def _ordered(seq: Sequence) -> Sequence:
    """The case in the toolbox's frame order (numeric when it can, else natural)."""
    names = [p.name for p in seq.frames]
    order, _ = sort_frames(seq.name, names, "auto")
    pos = {n: i for i, n in enumerate(names)}
    return Sequence(
        seq.name, seq.kind, tuple(seq.frames[pos[n]] for n in order), tuple(seq.masks[pos[n]] for n in order)
    )


def validate(
    model,
    sources: list[DataSource],
    device: torch.device,
    amp: bool = False,
    max_frames: int | None = None,
    backend: str = "torch",
    segmenter=None,
) -> ValidationResult:
    """Score ``model`` on every case of ``sources`` (see the module doc).

    Args:
        max_frames: use only the first ``max_frames`` frames of each case (quick runs).
        backend: what runs the model (``torch``; ``openvino``/``onnxruntime`` on the CPU convert the
            weights as they are now, into a cache folder removed afterwards: they change every validation).
        segmenter: a :class:`~vpscli.engine.segmenter.Segmenter` of ``model`` to run instead (another
            backend or precision, as the benchmarks compare them).
    """
    import tempfile

    from vpscli.engine.segmenter import Segmenter
    from vpscli.weights.store import LoadedModel

    was_training = model.training
    graphs = tempfile.TemporaryDirectory(prefix="vps-val-") if backend != "torch" and not segmenter else None
    # the inference entry of `vps segment` itself: windows, anchor, upsampling and 8-bit maps by construction
    segmenter = segmenter or Segmenter(
        LoadedModel(model),
        device=str(device),
        precision="bf16" if amp else "fp32",
        backend=backend,
        cache_dir=graphs.name if graphs else None,
    )
    seqs, neg_total, neg_clean = [], 0, 0
    try:
        for src in sources:
            for seq in src.sequences:
                seq = _ordered(seq)
                n = len(seq) if max_frames is None else min(len(seq), max_frames)
                results = segmenter.run(
                    FrameFolderSource(seq.frames[0].parent, seq.name, files=list(seq.frames[:n]))
                )
                if src.kind == "negative":
                    flags = [bool(r.mask.any()) for r in results]
                    neg_total, neg_clean = neg_total + n, neg_clean + flags.count(False)
                    continue
                seqs.append(_score_case(f"{src.root.name}/{seq.name}", seq, n, results))
    finally:
        model.train(was_training)
        if graphs is not None:
            graphs.cleanup()
    result = ValidationResult()
    if seqs:
        split = aggregate_sequences(seqs)
        result.metrics = {k: float(split.value(k)) for k in VAL_METRICS}
        result.n_frames, result.n_sequences = split.n_frames, split.n_sequences
    if neg_total:
        result.metrics["neg_clean"] = neg_clean / neg_total
    return result


def _score_case(name: str, seq: Sequence, n: int, results):
    """The toolbox's scores of one case from its 8-bit probability maps (``FrameResult.prob``)."""
    acc = SequenceAccumulator(name)
    keep = set(evaluated_frames([p.name for p in seq.frames[:n]]))
    for path, mask_path, result in zip(seq.frames[:n], seq.masks[:n], results):
        if path.name not in keep:
            continue
        gt = read_binary_mask(mask_path).astype(np.uint8) * 255
        pred8 = result.prob
        if pred8.shape != gt.shape:  # a mask saved at another size than its frame: scored at the mask's
            pred8 = cv2.resize(pred8, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        acc.add(score_arrays(pred8, gt, _FAMILIES))
    return acc.result()
