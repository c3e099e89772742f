"""The layers a synthetic frame is composed of (see :mod:`vpscli.synth`): the mucosa texture, the
polyps and how they move, the camera's path, motion blur, specular highlights, the endoscope's field of
view and burned-in text."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of ``shape`` (H, W): a coarse random grid, upsampled."""
    import cv2

    h, w = shape
    ch, cw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1, 1, (ch, cw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def mucosa_texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """World mucosa texture, ``(H, W, 3)`` float32 RGB in [0, 255]: folds, vessels, mottling."""
    import cv2

    h, w = shape
    base = np.array([205.0, 118.0, 108.0], np.float32) + rng.uniform(-12, 12, 3).astype(np.float32)
    tone = 1.0 + 0.10 * _smooth_noise(rng, shape, 6) + 0.05 * _smooth_noise(rng, shape, 24)
    img = base[None, None, :] * tone[..., None]
    # haustral folds: thick dark arcs, blurred into soft ridges with a light edge
    folds = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(4, 8))):
        center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (int(rng.uniform(0.3, 0.9) * w), int(rng.uniform(0.2, 0.6) * h))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(
            folds,
            center,
            axes,
            float(rng.uniform(0, 180)),
            start,
            start + float(rng.uniform(60, 160)),
            1.0,
            thickness=max(2, w // 60),
        )
    folds = cv2.GaussianBlur(folds, (0, 0), sigmaX=max(2.0, w / 120))
    ridge = np.roll(folds, shift=max(2, w // 150), axis=0)
    img *= (1.0 - 0.35 * folds + 0.18 * ridge)[..., None]
    # vessels: thin dark-red random walks
    vessels = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(10, 20))):
        p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        heading = rng.uniform(0, 2 * math.pi)
        pts = [p.copy()]
        for _ in range(int(rng.integers(10, 30))):
            heading += rng.normal(0, 0.35)
            p = p + 6.0 * np.array([math.cos(heading), math.sin(heading)])
            pts.append(p.copy())
        cv2.polylines(vessels, [np.round(np.array(pts)).astype(np.int32)], False, 1.0, thickness=1)
    vessels = cv2.GaussianBlur(vessels, (3, 3), 0)
    img *= (1.0 - 0.25 * vessels)[..., None] * np.array([1.0, 0.85, 0.9], np.float32)[
        None, None, :
    ] ** vessels[..., None]
    return img.clip(0, 255)


@dataclass
class _Polyp:
    """A polyp in world coordinates with its motion and shape-change parameters."""

    cx: float
    cy: float
    radius: float
    harmonics: np.ndarray  # (K, 3): amplitude, phase, angular speed per harmonic k = 2..K+1
    path: np.ndarray  # (2, 3): amplitude, frequency, phase for x and y
    breathing: tuple[float, float, float]  # amplitude, frequency, phase of radius change
    colour: np.ndarray  # (3,)
    texture: np.ndarray  # (H, W) float32 in [-1, 1], world-anchored

    def outline(self, t: float, n: int = 96) -> np.ndarray:
        """Polygon ``(n, 2)`` in world coordinates at time ``t`` (seconds)."""
        cx = self.cx + self.path[0, 0] * math.sin(2 * math.pi * self.path[0, 1] * t + self.path[0, 2])
        cy = self.cy + self.path[1, 0] * math.sin(2 * math.pi * self.path[1, 1] * t + self.path[1, 2])
        amp, freq, phase = self.breathing
        r = self.radius * (1.0 + amp * math.sin(2 * math.pi * freq * t + phase))
        theta = np.linspace(0, 2 * math.pi, n, endpoint=False)
        k = np.arange(2, 2 + len(self.harmonics))[:, None]
        wobble = (
            self.harmonics[:, :1]
            * np.sin(k * theta[None, :] + self.harmonics[:, 1:2] + self.harmonics[:, 2:3] * t)
        ).sum(axis=0)
        rr = r * (1.0 + wobble)
        return np.stack([cx + rr * np.cos(theta), cy + rr * np.sin(theta)], axis=1)


def make_polyp(rng: np.random.Generator, world: tuple[int, int], frame: tuple[int, int]) -> _Polyp:
    wh, ww = world
    fw, fh = frame
    k = 3
    return _Polyp(
        cx=ww / 2 + rng.uniform(-0.28, 0.28) * fw,
        cy=wh / 2 + rng.uniform(-0.25, 0.25) * fh,
        radius=rng.uniform(0.08, 0.16) * min(fw, fh),
        harmonics=np.stack(
            [rng.uniform(0.03, 0.10, k), rng.uniform(0, 2 * math.pi, k), rng.uniform(-1.5, 1.5, k)], 1
        ),
        path=np.stack(
            [
                rng.uniform(0.02, 0.08, 2) * min(fw, fh),
                rng.uniform(0.1, 0.4, 2),
                rng.uniform(0, 2 * math.pi, 2),
            ],
            1,
        ),
        breathing=(
            float(rng.uniform(0.1, 0.3)),
            float(rng.uniform(0.1, 0.3)),
            float(rng.uniform(0, 2 * math.pi)),
        ),
        colour=np.array([rng.uniform(175, 215), rng.uniform(80, 110), rng.uniform(80, 105)], np.float32),
        texture=_smooth_noise(rng, world, 40),
    )


def camera_path(rng: np.random.Generator, frame: tuple[int, int], world: tuple[int, int]):
    """Per-time affine map world → frame (``frame`` = (width, height)): drift (smooth), zoom and roll
    about the view centre."""
    wh, ww = world
    fw, fh = frame
    drift = np.stack(
        [
            rng.uniform(0.03, 0.10, 2) * min(fw, fh),
            rng.uniform(0.05, 0.25, 2),
            rng.uniform(0, 2 * math.pi, 2),
        ],
        1,
    )
    zoom = (float(rng.uniform(0.05, 0.15)), float(rng.uniform(0.05, 0.2)), float(rng.uniform(0, 2 * math.pi)))
    roll = (float(rng.uniform(0.0, 0.08)), float(rng.uniform(0.05, 0.2)), float(rng.uniform(0, 2 * math.pi)))

    def matrix(t: float) -> np.ndarray:
        cx = ww / 2 + drift[0, 0] * math.sin(2 * math.pi * drift[0, 1] * t + drift[0, 2])
        cy = wh / 2 + drift[1, 0] * math.sin(2 * math.pi * drift[1, 1] * t + drift[1, 2])
        s = 1.0 + zoom[0] * math.sin(2 * math.pi * zoom[1] * t + zoom[2])
        a = roll[0] * math.sin(2 * math.pi * roll[1] * t + roll[2])
        c, si = s * math.cos(a), s * math.sin(a)
        # frame = R·s·(world − centre) + frame centre
        return np.array(
            [[c, -si, fw / 2 - (c * cx - si * cy)], [si, c, fh / 2 - (si * cx + c * cy)]], np.float64
        )

    return matrix


def fov_mask(width: int, height: int) -> np.ndarray:
    """The endoscope's field of view: the frame with its four corners cut (octagon)."""
    import cv2

    cut = int(round(0.16 * min(width, height)))
    pts = np.array(
        [
            [cut, 0],
            [width - 1 - cut, 0],
            [width - 1, cut],
            [width - 1, height - 1 - cut],
            [width - 1 - cut, height - 1],
            [cut, height - 1],
            [0, height - 1 - cut],
            [0, cut],
        ],
        np.int32,
    )
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def motion_kernel(dx: float, dy: float) -> np.ndarray | None:
    length = math.hypot(dx, dy)
    if length < 1.5:
        return None
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    for i in range(size * 2):
        f = i / (size * 2 - 1) - 0.5
        k[
            int(round(c + f * dy * (size - 1) / max(length, 1e-6))),
            int(round(c + f * dx * (size - 1) / max(length, 1e-6))),
        ] = 1.0
    return k / k.sum()


def paint_polyps(
    frame: np.ndarray, mask: np.ndarray, polyps, m: np.ndarray, t: float, grid, light, kernel, draw: bool
) -> list[tuple[np.ndarray, float]]:
    """Paint the polyps seen through camera ``m`` at time ``t`` into ``frame`` (float ``(H, W, 3)``)
    and their areas into ``mask``; returns each polyp's ``(centre, radius)`` in the frame (its cap)."""
    import cv2

    fh, fw = mask.shape
    xx, yy = grid
    caps = []
    for p in polyps:
        pts = p.outline(t) @ m[:, :2].T + m[:, 2]
        pmask = np.zeros((fh, fw), np.uint8)
        cv2.fillPoly(pmask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        pm = pmask.astype(bool)
        centre_f = pts.mean(axis=0)
        radius_f = float(np.sqrt(((pts - centre_f) ** 2).sum(1)).mean())
        caps.append((centre_f, radius_f))
        if not pm.any():
            continue
        mask |= pm
        if not draw:
            continue
        tex = cv2.warpAffine(p.texture, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        d = np.sqrt(((xx - centre_f[0]) ** 2 + (yy - centre_f[1]) ** 2)) / max(radius_f, 1.0)
        dome = np.clip(1.0 - d**2, 0, 1)
        shade = (
            0.75
            + 0.45 * dome
            + 0.25
            * dome
            * ((xx - centre_f[0]) * light[0] + (yy - centre_f[1]) * light[1])
            / max(radius_f, 1.0)
        )
        layer = p.colour[None, None, :] * (shade * (1.0 + 0.12 * tex))[..., None]
        if kernel is not None:
            layer = cv2.filter2D(layer, -1, kernel, borderType=cv2.BORDER_REFLECT)
        frame[pm] = layer[pm]
    return caps


def add_highlights(frame: np.ndarray, spots: np.ndarray, caps, m: np.ndarray, light) -> np.ndarray:
    """Specular highlights, bright saturated blobs: world-anchored ``spots`` and one on each polyp's cap."""
    import cv2

    fh, fw = frame.shape[:2]
    spec = np.zeros((fh, fw), np.float32)
    for sx, sy, sr in spots:
        fx, fy = m @ np.array([sx, sy, 1.0])
        cv2.ellipse(spec, (int(fx), int(fy)), (max(1, int(sr * 1.6)), max(1, int(sr))), 30.0, 0, 360, 1.0, -1)
    for (cx, cy), r in caps:
        hx, hy = cx + light[0] * 0.45 * r, cy + light[1] * 0.45 * r
        cv2.ellipse(
            spec, (int(hx), int(hy)), (max(1, int(r * 0.14)), max(1, int(r * 0.08))), -20.0, 0, 360, 1.0, -1
        )
    spec = cv2.GaussianBlur(spec, (0, 0), 1.2)
    return frame * (1 - spec[..., None]) + 255.0 * spec[..., None]


def burn_in_text(out: np.ndarray, mask: np.ndarray, text: str, t: float) -> None:
    """The endoscope's on-screen text (a label and the elapsed time), never part of a polyp."""
    import cv2

    fh, fw = mask.shape
    text_layer = np.zeros((fh, fw), np.uint8)
    scale = 0.32 * min(fw, fh) / 320
    thick = max(1, int(round(scale * 2)))
    cv2.putText(
        text_layer,
        text,
        (4, int(14 * scale / 0.32)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        255,
        thick,
        cv2.LINE_AA,
    )
    seconds = int(t)
    cv2.putText(
        text_layer,
        f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
        (4, fh - 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        255,
        thick,
        cv2.LINE_AA,
    )
    drawn = text_layer > 0
    out[drawn] = np.maximum(out[drawn], text_layer[drawn, None])
    mask &= ~drawn
