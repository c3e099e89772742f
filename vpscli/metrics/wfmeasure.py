"""Weighted F-measure (Margolin et al. CVPR 2014), beta = 1, as the reference toolbox computes it.

With ``E = |p - G|``, computed only for a non-empty GT (an empty GT scores 0):

1. ``Et = E`` on G; each background pixel takes E of its **nearest foreground pixel** (Euclidean;
   ``scipy.ndimage.distance_transform_edt`` decides ties, as in the reference);
2. ``EA = Et`` convolved with the normalised 7x7 Gaussian (sigma 5), zero padding (done as two
   separable 1-D passes; the difference is float rounding, ~1e-16);
3. ``M = EA`` where (G and EA < E), else E;
4. weight ``B = 1`` on G and ``2 - 0.5 ** (D / 5)`` off G, D the distance to the foreground;
5. ``Ew = M * B``; ``TPw = |G| - sum_G Ew``; ``FPw = sum_notG Ew``;
6. ``R = 1 - mean_G Ew``, ``P = TPw / (TPw + FPw + eps)``, ``wF = 2 R P / (R + P + eps)``.

Speed without changing values (beyond float rounding): ``EA`` is only used on G, so steps 1-2 run on the
GT's bounding box grown by the kernel radius (the nearest-pixel map and the convolution are
translation-invariant, and all foreground pixels are inside). Off G, ``FPw = 2 sum(p) - sum(p 0.5^(D/5))``:
the first sum comes from the histogram, the second only from pixels within 266 pixels of the object
(farther, 0.5^(D/5) < 2^-53), with distances from OpenCV's exact Euclidean transform turned back into
scipy's float64 values (see :func:`_distances`).
"""

from __future__ import annotations

import numpy as np

from vpscli.metrics.frame import PreparedFrame

EPS = np.spacing(1)
BETA = 1
_KERNEL_RADIUS = 3
_LOG_HALF_OVER_5 = np.log(0.5) / 5
#: Beyond this distance 0.5 ** (D / 5) < 2**-53: the background weight 2 - 0.5 ** (D / 5) is exactly 2.0.
_WEIGHT_RADIUS = 266


def gaussian_kernel(size: int = 7, sigma: float = 5) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: float64 (size, size), sums to 1."""
    half = (size - 1) / 2
    y, x = np.ogrid[-half : half + 1, -half : half + 1]
    kernel = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    kernel[kernel < np.finfo(kernel.dtype).eps * kernel.max()] = 0
    total = kernel.sum()
    if total != 0:
        kernel /= total
    return kernel


_KERNEL = gaussian_kernel()
#: The same Gaussian as two 1-D passes: its marginal (the 2-D kernel is the outer product of it).
_KERNEL_1D = _KERNEL.sum(axis=1)


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
        slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)),
    )


def weighted_fmeasure(frame: PreparedFrame) -> float:
    """wFmeasure of one frame (0 for an empty GT)."""
    import cv2
    from scipy.ndimage import distance_transform_edt

    if frame.n_fg == 0:
        return 0.0
    gt, levels = frame.gt, frame.levels

    # Foreground part: Ew on G needs EA, i.e. Et within the kernel radius of G.
    box = _bounding_box(gt, _KERNEL_RADIUS)
    gt_box = gt[box]
    error_box = np.abs(levels[frame.pred[box]] - gt_box)
    nearest = distance_transform_edt(~gt_box, return_distances=False, return_indices=True)
    spread = error_box[nearest[0], nearest[1]]  # Et: E of the nearest foreground pixel (itself on G)
    # The kernel is separable; two 1-D passes differ from the 2-D sum by float rounding only, and
    # min(EA, E) below is continuous, so the result stays within ~1e-16 of the reference.
    blurred = cv2.sepFilter2D(spread, -1, _KERNEL_1D, _KERNEL_1D, borderType=cv2.BORDER_CONSTANT)
    error_fg = error_box[gt_box]
    blurred_fg = blurred[gt_box]
    weighted_fg = np.where(blurred_fg < error_fg, blurred_fg, error_fg)  # B = 1 on G

    # Background part: FPw = sum over background of p * (2 - 0.5 ** (D / 5))
    #                      = 2 * sum(p) - sum(p * 0.5 ** (D / 5)).
    # The first sum comes from the histogram; the second only from pixels near the object, since
    # 0.5 ** (D / 5) < 2**-53 beyond D = 265 (where the reference's weight is exactly 2.0 anyway).
    sum_p = float(np.dot(frame.bg_hist, levels))
    near = _bounding_box(gt, _WEIGHT_RADIUS)
    gt_near = gt[near]
    p_near = levels[frame.pred[near]]
    p_near[gt_near] = 0
    decay = np.exp(_LOG_HALF_OVER_5 * _distances(gt_near))
    np.multiply(p_near, decay, out=decay)
    false_w = 2 * sum_p - float(decay.sum())  # not np.dot: BLAS threads stall on a busy machine

    true_w = frame.n_fg - np.sum(weighted_fg)
    recall = 1 - np.mean(weighted_fg)
    precision = true_w / (true_w + false_w + EPS)
    return float((1 + BETA) * recall * precision / (recall + BETA * precision + EPS))


def _distances(gt: np.ndarray) -> np.ndarray:
    """float64 (H, W): Euclidean distance of every pixel to the nearest foreground pixel, as scipy gives it.

    scipy returns ``sqrt(dy^2 + dx^2)`` in float64 from integer offsets. OpenCV's exact (``DIST_MASK_PRECISE``)
    transform is several times faster but returns float32; below 1024 pixels the float32 value identifies
    the integer squared distance uniquely, so ``sqrt(rint(d32^2))`` is scipy's value (farther away the
    weight is 2.0 to the last bit either way).
    """
    import cv2

    d = cv2.distanceTransform((~gt).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
    np.multiply(d, d, out=d)
    np.rint(d, out=d)
    return np.sqrt(d, out=d)
