"""One (prediction, ground truth) pair, read and prepared exactly as the reference toolbox does.

Preparation (GewelsJI/VPS ``eval/``, identical for every measure):

1. both maps are read with ``cv2.imread(path, IMREAD_GRAYSCALE)`` -> uint8 (RGB/RGBA: OpenCV luma, alpha
   dropped; 16-bit: high byte; palette: expanded to colour first) — :func:`read_gray`;
2. a prediction of another size is resized to the GT size with ``cv2.resize`` defaults (bilinear, on uint8);
   the GT is never resized;
3. the GT is binarised at ``> 128`` (so a 0/1-valued GT is empty);
4. the prediction becomes ``p = pred / 255`` in float64, then ``(p - min p) / (max p - min p)`` unless it is
   constant (a constant map keeps ``v / 255``).

vps reads both maps with :func:`read_map` instead: :func:`vpscli.io.masks.read_mask`, the mask reader of
every vps command. For 8-bit greyscale PNGs (the toolbox's inputs: every SUN-SEG GT and prediction) it
*is* ``cv2.imread(IMREAD_GRAYSCALE)``, so the arrays, and every number, are the toolbox's. Other
encodings mean what they mean to the rest of vps, where the toolbox misreads them: a palette PNG (vps's
own DAVIS export) has foreground index > 0, where the toolbox takes the colour's grey level (DAVIS dark
red is 38: an empty GT under > 128); 1-bit and 0/1-valued masks become 0/255 (a 0/1 GT is empty to the
toolbox); 16-bit maps are rounded ``v / 257`` (the toolbox keeps the high byte); coloured RGB masks have
foreground where not black (the toolbox takes their luma). :func:`read_map` returns which conversion was
made, and ``vps evaluate`` reports each kind once.

Because the prediction is 8-bit, the normalised map takes at most 256 values. :class:`PreparedFrame` keeps
the uint8 map plus a 256-entry table ``levels`` with the float64 value of each level — computed with the
same float operations as the reference, so ``levels[pred]`` is bit-identical to the reference's map — and
the per-level pixel counts on the GT foreground and background. Most measures need nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from vpscli.errors import InputError

#: GT pixels strictly above this value are foreground.
GT_THRESHOLD = 128


@dataclass(frozen=True)
class PreparedFrame:
    """A prepared pair. Shapes: ``pred`` and ``gt`` are (H, W); ``levels`` and the histograms are (256,)."""

    pred: np.ndarray  #: uint8 (H, W): the prediction as read (and resized to the GT size)
    gt: np.ndarray  #: bool (H, W): GT > 128
    levels: np.ndarray  #: float64 (256,): the normalised value of each uint8 level
    fg_hist: np.ndarray  #: int64 (256,): GT-foreground pixels per prediction level
    bg_hist: np.ndarray  #: int64 (256,): GT-background pixels per prediction level

    @property
    def shape(self) -> tuple[int, int]:
        return self.gt.shape  # type: ignore[return-value]

    @property
    def n_pixels(self) -> int:
        return int(self.gt.size)

    @property
    def n_fg(self) -> int:
        """Number of GT-foreground pixels."""
        return int(self.fg_hist.sum())

    @cached_property
    def hist(self) -> np.ndarray:
        """int64 (256,): all pixels per prediction level."""
        return self.fg_hist + self.bg_hist

    @cached_property
    def present(self) -> np.ndarray:
        """bool (256,): levels that occur in the prediction."""
        return self.hist > 0

    @cached_property
    def pred_map(self) -> np.ndarray:
        """float64 (H, W): the normalised prediction, bit-identical to the reference's ``pred``."""
        return self.levels[self.pred]


@lru_cache(maxsize=4096)
def normalised_levels(lo: int, hi: int) -> np.ndarray:
    """float64 (256,): the normalised value of every uint8 level for a map whose levels span [lo, hi].

    Same float operations as the reference (``x / 255`` first, then min-max on those floats), so each
    entry is bit-identical to the reference's value for a pixel of that level.
    """
    levels = np.arange(256, dtype=np.float64) / 255
    if hi != lo:  # a constant map stays v / 255 (MATLAB mapminmax leaves constant rows untouched)
        low, high = levels[lo], levels[hi]
        levels = (levels - low) / (high - low)
    levels.flags.writeable = False  # cached and shared between frames
    return levels


def prepare_frame(pred: np.ndarray, gt: np.ndarray) -> PreparedFrame:
    """Prepare a uint8 (H, W) prediction (already at the GT size) and a uint8 (H, W) GT."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} differ; resize first (read_pair does)")
    pred = np.ascontiguousarray(pred, dtype=np.uint8)
    gt_bool = np.ascontiguousarray(gt) > GT_THRESHOLD
    bg_hist, fg_hist = level_histograms(pred, gt_bool)
    nz = np.flatnonzero(bg_hist + fg_hist)
    levels = normalised_levels(int(nz[0]), int(nz[-1]))
    return PreparedFrame(pred=pred, gt=gt_bool, levels=levels, fg_hist=fg_hist, bg_hist=bg_hist)


#: OpenCV histograms count in float32, exact below 2**24 pixels; larger images use numpy.
_CV_HIST_LIMIT = 1 << 24


def level_histograms(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background, foreground) pixel counts per uint8 level, int64 (256,) each.

    ``pred`` (uint8) and ``gt`` (bool) may be strided views of a larger frame (quadrants).
    """
    if pred.size == 0:
        return np.zeros(256, np.int64), np.zeros(256, np.int64)
    if pred.size < _CV_HIST_LIMIT:
        import cv2

        total = cv2.calcHist([pred], [0], None, [256], [0, 256]).ravel().astype(np.int64)
        fg = cv2.calcHist([pred], [0], gt.view(np.uint8), [256], [0, 256]).ravel().astype(np.int64)
        return total - fg, fg
    total = np.bincount(pred.ravel(), minlength=256).astype(np.int64)
    fg = np.bincount(pred[gt], minlength=256).astype(np.int64)
    return total - fg, fg


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image as 8-bit grayscale exactly as the toolbox does; :class:`InputError` if unreadable.

    What the toolbox sees (kept to explain the differences); vps scores what :func:`read_map` reads.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise InputError(
            "cannot be read as an image", path=path, fix="replace or remove the file (PNG, 8 or 16 bit)"
        )
    return image


def read_map(path: str | Path) -> tuple[np.ndarray, str | None]:
    """Read a GT or prediction for scoring: ``(uint8 (H, W) array, conversion kind or None)``.

    :func:`vpscli.io.masks.read_mask` (see the module doc): an 8-bit greyscale PNG gives the toolbox's
    array, byte for byte, and kind ``None``; any other encoding is converted and its kind (one of
    :data:`vpscli.io.masks.CONVERSIONS`) is returned so that the caller can say so.
    """
    from vpscli.io.masks import read_mask

    mask = read_mask(path)
    return mask.array, mask.kind


#: What each conversion of :func:`read_map` means, for a GT and for a prediction (``vps evaluate``'s notes).
#: Conversions where the toolbox's reader gives the same array say so; the others say what it would do.
_GT_CONVERSIONS = {
    "palette": "palette images: index > 0 read as foreground; the SUN-SEG toolbox would read their colours' "
    "grey level instead (vps's DAVIS export, dark red = grey 38, would be empty under its > 128 threshold)",
    "0/1": "0/1 masks: 1 read as foreground (255); the SUN-SEG toolbox would read them as empty (GT > 128)",
    "1-bit": "1-bit images: read as 0/255, as the SUN-SEG toolbox does",
    "16-bit": "16-bit images: scaled to 8 bits (rounded v/257; the SUN-SEG toolbox keeps the high byte, which "
    "matters only for values within 1 level of 128)",
    "grey-rgb": "RGB images with equal channels: read as grey, as the SUN-SEG toolbox does",
    "colour": "coloured RGB images: non-black pixels read as foreground; the SUN-SEG toolbox would keep only "
    "pixels whose grey level (luma) is above 128",
    "other": "in an unusual image mode: converted to grey",
}
_PRED_CONVERSIONS = {
    "palette": "palette images: index > 0 read as foreground (255); the SUN-SEG toolbox would score their "
    "colours' grey level",
    "0/1": "0/1 masks: scaled to 0/255 (after min-max normalisation the scores are the toolbox's, except "
    "for an all-1 map, which the toolbox scores as 1/255)",
    "1-bit": "1-bit images: read as 0/255, as the SUN-SEG toolbox does",
    "16-bit": "16-bit images: scaled to 8 bits (rounded v/257; the SUN-SEG toolbox keeps the high byte)",
    "grey-rgb": "RGB images with equal channels: read as grey, as the SUN-SEG toolbox does",
    "colour": "coloured RGB images: non-black pixels read as foreground (255); the SUN-SEG toolbox would "
    "score their grey level (luma)",
    "other": "in an unusual image mode: converted to grey",
}


def conversion_note(kind: str, count: int, gt: bool) -> str:
    """One line saying that ``count`` GT masks (``gt``) or predictions were read with conversion ``kind``."""
    table = _GT_CONVERSIONS if gt else _PRED_CONVERSIONS
    return f"{count} {'GT mask' if gt else 'prediction'}(s) are " + table.get(kind, f"converted ({kind})")


def read_pair(gt_path: str | Path, pred_path: str | Path | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Read a GT and its prediction (:func:`read_map`) as uint8 (H, W) arrays of the GT's size.

    ``pred_path=None`` stands for a missing prediction scored as an all-zero map (``--allow-missing``).
    Returns ``(pred, gt, resized)``; ``resized`` says the prediction had another size and was resized
    with ``cv2.resize`` defaults (bilinear on uint8, no anti-aliasing), as the toolbox does.
    """
    gt, _ = read_map(gt_path)
    if pred_path is None:
        return np.zeros_like(gt), gt, False
    pred, _ = read_map(pred_path)
    if pred.shape != gt.shape:
        import cv2

        return cv2.resize(pred, (gt.shape[1], gt.shape[0])), gt, True
    return pred, gt, False
