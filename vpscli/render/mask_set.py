"""Which mask file belongs to which frame, and what a mask folder says about its run.

A mask folder is matched to a source's frames by :func:`vpscli.io.run_folder.match_to_frames`:
frame name (``case1_0001.png`` for frame ``case1_0001.jpg``), else 0-based index (``000000.png``,
the ``vps segment`` layout), else, when the counts agree, natural order. A folder whose images hold values other
than 0 and 255 is a probability folder (``floor(255·p)``), thresholded at ``threshold``.
``run.json`` beside the masks folder (or inside it) gives model name and threshold;
``frames.csv`` beside it gives per-frame ``max_prob`` for binary masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpscli.errors import InputError
from vpscli.io.masks import list_masks, read_mask
from vpscli.io.run_folder import RunFolder, match_to_frames


@dataclass
class RunInfo:
    """What ``run.json``/``frames.csv`` beside a mask folder say (all optional)."""

    model: str | None = None
    threshold: float | None = None
    weights_sha256: str | None = None
    #: run.json ``status`` (see :mod:`vpscli.io.run_record`)
    status: str | None = None
    #: frame index → max probability, from frames.csv
    max_prob: dict[int, float] = field(default_factory=dict)
    #: the segmented source as run.json names it: path and fingerprint (``vpscli.io.fingerprint``)
    source: str | None = None
    source_fingerprint: str | None = None


def _model_name(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        name = value.get("name") or value.get("id")
        version = value.get("version")
        return f"{name}@{version}" if name and version else name
    return None


def read_run_info(mask_dir: Path) -> RunInfo:
    """Model, threshold and per-frame confidence from ``run.json``/``frames.csv`` near ``mask_dir``."""
    folder = RunFolder.of_mask_folder(mask_dir)
    info = RunInfo()
    data = folder.record()  # an unreadable run.json only costs the HUD its model line
    if data:
        info.model = _model_name(data.get("model"))
        thr = data.get("threshold")
        if isinstance(thr, (int, float)):
            info.threshold = float(thr)
        model = data.get("model")
        nested = model if isinstance(model, dict) else {}
        sha = data.get("weights_sha256") or nested.get("weights_sha256") or nested.get("sha256")
        info.weights_sha256 = sha if isinstance(sha, str) and sha else None
        info.status = data.get("status") if isinstance(data.get("status"), str) else None
        info.source = data.get("source") if isinstance(data.get("source"), str) else None
        fingerprint = data.get("source_fingerprint")
        info.source_fingerprint = fingerprint if isinstance(fingerprint, str) else None
    info.max_prob = folder.max_probs()
    return info


@dataclass
class MaskMatch:
    """Mask files matched to frames: ``files[i]`` is frame ``i``'s mask, or ``None``."""

    folder: Path
    files: list[Path | None]
    n_masks: int
    how: str  # "name", "index" or "order"

    @property
    def missing(self) -> list[int]:
        return [i for i, f in enumerate(self.files) if f is None]


def match_masks(folder: str | Path, frame_names: list[str]) -> MaskMatch:
    """Match the mask files of ``folder`` to the frames named ``frame_names`` (source order)."""
    folder = Path(folder)
    masks = list_masks(folder)
    if not masks:
        raise InputError(
            "no mask images in folder (expected png/bmp/tif/jpg)",
            path=folder,
            fix="pass the folder that holds the masks",
        )
    files, how = match_to_frames(masks, frame_names)
    return MaskMatch(folder, files, len(masks), how)


def is_probability(array: np.ndarray) -> bool:
    """True when a ``(H, W)`` uint8 mask holds values other than 0 and 255."""
    return bool(np.any((array > 0) & (array < 255)))


def load_mask(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """Read ``path`` as ``(H, W)`` uint8 at ``size`` ``(width, height)``; nearest resize, with a note."""
    import cv2

    m = read_mask(path).array
    w, h = size
    if (m.shape[1], m.shape[0]) != (w, h):
        note = f"{path}: mask is {m.shape[1]}x{m.shape[0]}, frame is {w}x{h}; resized (nearest)"
        return cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST), note
    return m, None


def aspect_mismatch(mask_size: tuple[int, int], frame_size: tuple[int, int], tolerance: float = 0.02) -> bool:
    """True when ``(w, h)`` sizes differ in aspect ratio by more than ``tolerance`` (not just a rescale)."""
    (mw, mh), (fw, fh) = mask_size, frame_size
    return abs((mw / mh) / (fw / fh) - 1.0) > tolerance
