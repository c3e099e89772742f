"""An independent, deliberately plain implementation of the toolbox's per-frame measures, for tests.

Written from ``../shared/specs/metrics.md``: full float images, one explicit binarisation per threshold,
scipy's distance transform and convolution on the whole frame. Slow and obvious on purpose — it shares
no code with :mod:`vpscli.metrics`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve, distance_transform_edt

EPS = np.spacing(1)


def prepare(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = gt > 128
    p = pred / 255
    if p.max() != p.min():
        p = (p - p.min()) / (p.max() - p.min())
    return p, g


def mae(p, g):
    return float(np.mean(np.abs(p - g)))


def smeasure(p, g):
    y = g.mean()
    if y == 0:
        return float(1 - p.mean())
    if y == 1:
        return float(p.mean())

    def o(values):
        with np.errstate(all="ignore"):
            m = values.mean()
            s = values.std(ddof=1) if values.size > 1 else np.nan
        return 2 * m / (m * m + 1 + s + EPS)

    obj = y * o(p[g]) + (1 - y) * o(1 - p[~g])
    rows, cols = np.nonzero(g)
    cy, cx = int(np.round(rows.mean())) + 1, int(np.round(cols.mean())) + 1
    h, w = g.shape
    region = 0.0
    for r0, r1, c0, c1 in ((0, cy, 0, cx), (0, cy, cx, w), (cy, h, 0, cx), (cy, h, cx, w)):
        a, b = p[r0:r1, c0:c1], g[r0:r1, c0:c1].astype(float)
        n = a.size
        weight = n / (h * w)
        with np.errstate(all="ignore"):
            if n == 0:
                q = np.nan
            else:
                xa, yb = a.mean(), b.mean()
                sx = ((a - xa) ** 2).sum() / (n - 1)
                sy = ((b - yb) ** 2).sum() / (n - 1)
                sxy = ((a - xa) * (b - yb)).sum() / (n - 1)
                num = 4 * xa * yb * sxy
                den = (xa * xa + yb * yb) * (sx + sy)
                q = num / (den + EPS) if num != 0 else (1.0 if den == 0 else 0.0)
        region += weight * q
    s = 0.5 * obj + 0.5 * region
    return 0.0 if not s > 0 else float(s)  # built-in max(0, s): NaN -> 0


def _fm_binary(f, g, beta2=0.3):
    tp = (f & g).sum()
    precision = tp / max(f.sum(), 1)
    recall = tp / max(g.sum(), 1)
    num = (1 + beta2) * precision * recall
    return 0.0 if num == 0 else num / (beta2 * precision + recall)


def histogram_binaries(p):
    """Convention H: the 256 binary maps, strict -> lenient."""
    q = (p * 255).astype(np.uint8)
    return [q >= 255 - i for i in range(256)]


def em_curve(p, g):
    return np.array([_em_binary_bool(f, g) for f in histogram_binaries(p)])


def _em_binary_bool(f, g):
    n = g.size
    if g.sum() == 0:
        return (~f).sum() / (n - 1 + EPS)
    if g.all():
        return f.sum() / (n - 1 + EPS)
    a = f.astype(float) - f.mean()
    b = g.astype(float) - g.mean()
    xi = 2 * a * b / (a * a + b * b + EPS)
    return ((xi + 1) ** 2 / 4).sum() / (n - 1 + EPS)


def fm_curve(p, g):
    return np.array([_fm_binary(f, g) for f in histogram_binaries(p)])


def adaptive(p):
    return min(2 * p.mean(), 1)


def adp_em(p, g):
    return float(_em_binary_bool(p >= adaptive(p), g))


def adp_fm(p, g):
    f = p >= adaptive(p)
    return 0.0 if (f & g).sum() == 0 else float(_fm_binary(f, g))


def medical_curves(p, g):
    """Dice, IoU, Sen, Spe with ``p >= linspace(1, 0, 256)[i]`` and the zero-TP rule."""
    out = {k: np.zeros(256) for k in ("Dice", "IoU", "Sen", "Spe")}
    for i, t in enumerate(np.linspace(1, 0, 256)):
        f = p >= t
        tp = int((f & g).sum())
        if tp == 0:
            continue
        fp = int((f & ~g).sum())
        fn = int((~f & g).sum())
        tn = int((~f & ~g).sum())
        out["Dice"][i] = 2 * tp / (2 * tp + fp + fn)
        out["IoU"][i] = tp / (tp + fp + fn)
        out["Sen"][i] = tp / (tp + fn)
        with np.errstate(all="ignore"):
            out["Spe"][i] = np.float64(tn) / np.float64(tn + fp)
    return out


def wfmeasure(p, g):
    if not g.any():
        return 0.0
    dist, idx = distance_transform_edt(~g, return_indices=True)
    e = np.abs(p - g)
    et = e[idx[0], idx[1]]
    y, x = np.mgrid[-3:4, -3:4]
    k = np.exp(-(x * x + y * y) / 50.0)
    k /= k.sum()
    ea = convolve(et, k, mode="constant", cval=0)
    m = np.where(g & (ea < e), ea, e)
    b = np.where(g, 1.0, 2 - np.exp(np.log(0.5) / 5 * dist))
    ew = m * b
    tpw = g.sum() - ew[g].sum()
    fpw = ew[~g].sum()
    r = 1 - ew[g].mean()
    pr = tpw / (tpw + fpw + EPS)
    return float(2 * r * pr / (r + pr + EPS))


def all_measures(pred: np.ndarray, gt: np.ndarray) -> dict:
    """Every scalar and curve of one frame, keyed like :class:`vpscli.metrics.FrameScores`."""
    import cv2

    if pred.shape != gt.shape:
        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]))
    p, g = prepare(pred, gt)
    out = {
        "Smeasure": smeasure(p, g), "wFmeasure": wfmeasure(p, g), "MAE": mae(p, g),
        "adpEm": adp_em(p, g), "adpFm": adp_fm(p, g), "Em": em_curve(p, g), "Fm": fm_curve(p, g),
    }  # fmt: skip
    out.update(medical_curves(p, g))
    return out
