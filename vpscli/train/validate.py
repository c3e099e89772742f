"""Validation with the ``vps evaluate`` metrics (toolbox protocol) on held-out clips.

Each case is run as ``vps segment`` runs it: a fresh state, the one windowing rule of
:func:`vpscli.engine.windows.clip_windows` (consecutive clips of ``spec.clip_length``, the last
one aligned to the end of the case, cases shorter than a clip padded by repeating the last
frame), the case's first frame as the anchor. Probabilities are resized to the GT size,
quantised to 8 bits like saved predictions, and scored per frame with
:func:`vpscli.metrics.score_arrays`; frames are ordered and trimmed (first and last dropped)
as the toolbox does, then averaged frame → case → split (:mod:`vpscli.metrics.aggregate`).
Negative folders (no GT) give ``neg_clean``: the share of frames with no pixel ≥ 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from vpscli.metrics.aggregate import SequenceAccumulator, aggregate_sequences
from vpscli.metrics.ordering import evaluated_frames, sort_frames
from vpscli.metrics.scoring import score_arrays
from vpscli.train.store import read_binary_mask, read_rgb
from vpscli.train.sources import DataSource, Sequence

__all__ = ["VAL_METRICS", "HIGHER_IS_BETTER", "ValidationResult", "predict_sequence", "validate"]

#: What validation reports (keys of :mod:`vpscli.metrics.keys`).
VAL_METRICS = ("maxDice", "meanDice", "Smeasure", "MAE", "maxIoU")
_FAMILIES = frozenset({"smeasure", "mae", "medical"})
HIGHER_IS_BETTER = {"maxDice": True, "meanDice": True, "Smeasure": True, "MAE": False, "maxIoU": True,
                    "neg_clean": True}


@dataclass
class ValidationResult:
    """Split-level scores (``metrics``: key → value) and frames scored."""

    metrics: dict[str, float] = field(default_factory=dict)
    n_frames: int = 0
    n_sequences: int = 0


@torch.no_grad()
def predict_sequence(model, frames: list[np.ndarray], device: torch.device, amp: bool) -> list[np.ndarray]:
    """Probability maps ``(H, W)`` float32 at the input size, one per frame (``frames``: RGB uint8),
    windowed exactly as ``vps segment`` windows a video (:func:`vpscli.engine.windows.clip_windows`:
    the last clip aligned to the end, short cases padded), so validation scores what
    ``vps segment`` + ``vps evaluate`` would."""
    from vpscli.engine.windows import clip_windows

    spec = model.spec
    h, w = spec.input_size
    x = torch.stack([torch.from_numpy(cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)) for f in frames])
    x = model.preprocess(x.permute(0, 3, 1, 2).to(device))  # (N, 3, H, W)
    state = model.init_state()
    anchor = x[:1] if spec.needs_anchor else None  # frame 0, one for the case
    probs: list[np.ndarray | None] = [None] * len(frames)
    for window in clip_windows(range(len(frames)), spec.clip_length, index_of=lambda i: i):
        clip = x[window.items][None]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits, state = model(clip, state, frame_indices=window.indices, anchor=anchor)
        p = torch.sigmoid(logits.float())[0, :, 0].cpu().numpy()
        for k in window.owned:
            probs[window.items[k]] = p[k]
    return probs


def _ordered(seq: Sequence) -> Sequence:
    """The case in the toolbox's frame order (numeric when it can, else natural)."""
    names = [p.name for p in seq.frames]
    order, _ = sort_frames(seq.name, names, "auto")
    pos = {n: i for i, n in enumerate(names)}
    return Sequence(seq.name, seq.kind, tuple(seq.frames[pos[n]] for n in order),
                    tuple(seq.masks[pos[n]] for n in order))


def validate(model, sources: list[DataSource], device: torch.device, amp: bool = False,
             max_frames: int | None = None) -> ValidationResult:
    """Score ``model`` on every case of ``sources`` (see the module doc).

    Args:
        max_frames: use only the first ``max_frames`` frames of each case (quick runs).
    """
    was_training = model.training
    model.eval()
    seqs, neg_total, neg_clean = [], 0, 0
    try:
        for src in sources:
            for seq in src.sequences:
                seq = _ordered(seq)
                n = len(seq) if max_frames is None else min(len(seq), max_frames)
                frames = [read_rgb(p) for p in seq.frames[:n]]
                probs = predict_sequence(model, frames, device, amp)
                if src.kind == "negative":
                    neg_total += n
                    neg_clean += sum(int(not (p >= 0.5).any()) for p in probs)
                    continue
                acc = SequenceAccumulator(f"{src.root.name}/{seq.name}")
                keep = set(evaluated_frames([p.name for p in seq.frames[:n]]))
                for path, mask_path, prob in zip(seq.frames[:n], seq.masks[:n], probs):
                    if path.name not in keep:
                        continue
                    gt = read_binary_mask(mask_path).astype(np.uint8) * 255
                    pred = cv2.resize(prob, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
                    pred8 = np.floor(np.clip(pred, 0, 1) * 255).astype(np.uint8)
                    acc.add(score_arrays(pred8, gt, _FAMILIES))
                seqs.append(acc.result())
    finally:
        model.train(was_training)
    result = ValidationResult()
    if seqs:
        split = aggregate_sequences(seqs)
        result.metrics = {k: float(split.value(k)) for k in VAL_METRICS}
        result.n_frames, result.n_sequences = split.n_frames, split.n_sequences
    if neg_total:
        result.metrics["neg_clean"] = neg_clean / neg_total
    return result
