"""Procedural colonoscopy-like clips with exact ground truth.

A clip is rendered from a fixed "world": a pinkish mucosa texture with folds and
vessels, and polyps that live in that world. A camera looks at the world with drift,
zoom and a little roll; polyps move on their own and change size and shape. Each
frame is composed in layers so that the ground truth is exact: the mask is the set of
pixels whose colour came from a polyp layer.

Layers, in order: mucosa (motion-blurred) → polyps composited with their hard masks
(each polyp layer blurred on its own, so blur never bleeds a polyp colour outside its
mask) → specular highlights → vignetting → sensor noise → black endoscope corners →
burned-in text. Highlights, vignetting and noise change colours but not which layer a
pixel came from; corners and text hide pixels, so they are removed from the mask.

Deterministic per seed: every random choice comes from generators spawned from
``numpy.random.SeedSequence(seed)``, one per component, so adding a polyp does not
change the mucosa, and a clip rendered with ``draw_polyps=False`` is the same clip with
the polyps left out (that is how the tests check the masks).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vpscli.errors import OutputError, UsageError

#: world canvas size relative to the frame: room for camera drift and zoom-out
WORLD_SCALE = 1.7


@dataclass(frozen=True)
class SynthConfig:
    """What to render.

    Attributes:
        frames: number of frames.
        width, height: frame size in pixels.
        fps: frame rate of the written video.
        polyps: number of polyps (ignored when ``negative``).
        negative: a clip without polyps (empty masks).
        seed: random seed; equal configs render equal clips.
        text: burn on-screen text into the top-left corner, as endoscopy processors do.
    """

    frames: int = 48
    width: int = 448
    height: int = 320
    fps: float = 25.0
    polyps: int = 1
    negative: bool = False
    seed: int = 0
    text: bool = True

    def validate(self) -> None:
        if self.frames < 1:
            raise UsageError(f"--frames must be at least 1, got {self.frames}")
        if self.width < 32 or self.height < 32 or self.width > 7680 or self.height > 4320:
            raise UsageError(f"--size must be between 32x32 and 7680x4320, got {self.width}x{self.height}")
        if not (0 < self.fps <= 1000):
            raise UsageError(f"--fps must be in (0, 1000], got {self.fps}")
        if self.polyps < 0 or self.polyps > 20:
            raise UsageError(f"--polyps must be between 0 and 20, got {self.polyps}")

    @property
    def n_polyps(self) -> int:
        return 0 if self.negative else self.polyps


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of ``shape`` (H, W): a coarse random grid, upsampled."""
    import cv2

    h, w = shape
    ch, cw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1, 1, (ch, cw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def _mucosa(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
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


def _make_polyp(rng: np.random.Generator, world: tuple[int, int], frame: tuple[int, int]) -> _Polyp:
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


def _camera(rng: np.random.Generator, cfg: SynthConfig, world: tuple[int, int]):
    """Per-time affine map world → frame: drift (smooth), zoom and roll about the view centre."""
    wh, ww = world
    fw, fh = cfg.width, cfg.height
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


def _fov_mask(width: int, height: int) -> np.ndarray:
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


def _motion_kernel(dx: float, dy: float) -> np.ndarray | None:
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


def render_clip(cfg: SynthConfig, draw_polyps: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(frame, mask)`` per frame: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` bool ground truth.

    ``draw_polyps=False`` renders the identical clip with the polyps left out (same camera,
    highlights, noise); its masks are still the polyps' would-be areas.
    """
    import cv2

    cfg.validate()
    seeds = np.random.SeedSequence(cfg.seed).spawn(6 + cfg.n_polyps)
    tex_rng, cam_rng, spec_rng, noise_rng, text_rng, shade_rng = (np.random.default_rng(s) for s in seeds[:6])
    fw, fh = cfg.width, cfg.height
    world = (int(fh * WORLD_SCALE), int(fw * WORLD_SCALE))
    mucosa = _mucosa(tex_rng, world)
    polyps = [_make_polyp(np.random.default_rng(s), world, (fw, fh)) for s in seeds[6:]]
    camera = _camera(cam_rng, cfg, world)
    fov = _fov_mask(fw, fh)
    yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float32)
    vignette = 1.0 - 0.45 * (((xx - fw / 2) / (fw / 2)) ** 2 + ((yy - fh / 2) / (fh / 2)) ** 2) / 2.0
    light = np.array([shade_rng.uniform(-0.5, 0.5), shade_rng.uniform(-0.8, -0.3)], np.float32)
    # world-anchored specular spots (wet mucosa) plus a few that ride on each polyp's cap
    n_spots = int(spec_rng.integers(6, 14))
    spots = np.stack(
        [
            spec_rng.uniform(0, world[1], n_spots),
            spec_rng.uniform(0, world[0], n_spots),
            spec_rng.uniform(1.0, 4.0, n_spots) * max(fw, fh) / 448,
        ],
        1,
    )
    overlay_text = f"SYNTH {cfg.seed:04d}"
    dt = 1.0 / cfg.fps
    prev_m = camera(-dt)
    for i in range(cfg.frames):
        t = i * dt
        m = camera(t)
        # blur along the apparent motion of the view centre over one frame interval
        centre = np.array([world[1] / 2, world[0] / 2, 1.0])
        dx, dy = (m @ centre) - (prev_m @ centre)
        prev_m = m
        kernel = _motion_kernel(dx, dy)
        frame = cv2.warpAffine(mucosa, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if kernel is not None:
            frame = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)
        mask = np.zeros((fh, fw), bool)
        caps = _draw_polyps(frame, mask, polyps, m, t, (xx, yy), light, kernel, draw_polyps)
        frame = _add_highlights(frame, spots, caps, m, light)
        frame *= vignette[..., None]
        frame += noise_rng.normal(0, 2.0, frame.shape).astype(np.float32)
        out = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        out[~fov] = 0
        mask &= fov
        if cfg.text:
            _burn_in_text(out, mask, overlay_text, t)
        _ = text_rng  # reserved: keeps the spawn order stable if text styles become random
        yield out, mask


def _draw_polyps(
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


def _add_highlights(frame: np.ndarray, spots: np.ndarray, caps, m: np.ndarray, light) -> np.ndarray:
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


def _burn_in_text(out: np.ndarray, mask: np.ndarray, text: str, t: float) -> None:
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


@dataclass(frozen=True)
class SynthOutput:
    """Where a clip was written: ``video`` (mp4) or ``frames`` (folder), and ``gt`` (mask folder)."""

    name: str
    video: Path | None
    frames: Path | None
    gt: Path
    n_frames: int
    polyp_frames: int


def write_clip(
    out: str | Path, cfg: SynthConfig, fmt: str = "mp4", name: str = "synth", progress=None
) -> SynthOutput:
    """Render ``cfg`` into ``out``.

    Layout (SUN-SEG style, so ``vps evaluate`` reads it directly):
    ``mp4`` → ``OUT/<name>.mp4`` + ``OUT/GT/<name>/000000.png`` …;
    ``frames`` → ``OUT/Frame/<name>/000000.png`` … + ``OUT/GT/<name>/000000.png`` ….
    Masks are 8-bit 0/255 PNGs named by 0-based frame index. ``OUT/<name>.json`` records
    the config. ``progress`` is called with the number of frames done.
    """
    import cv2

    from vpscli.io.masks import write_mask
    from vpscli.io.writer import VideoWriter

    if fmt not in ("mp4", "frames"):
        raise UsageError(f"--format must be mp4 or frames, got {fmt!r}")
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise UsageError(
            f"--name must be a plain name (no folders), got {name!r}",
            fix="give e.g. --name clip1; choose the folder with the output argument",
        )
    if fmt == "mp4" and (cfg.width % 2 or cfg.height % 2):
        raise UsageError(
            f"an H.264 video needs an even width and height, got {cfg.width}x{cfg.height}",
            fix=f"use --size {cfg.width + cfg.width % 2}x{cfg.height + cfg.height % 2}, or --format "
            "frames for odd sizes",
        )
    cfg.validate()
    out = Path(out)
    gt_dir = out / "GT" / name
    gt_dir.mkdir(parents=True, exist_ok=True)
    video_path = out / f"{name}.mp4" if fmt == "mp4" else None
    frame_dir = out / "Frame" / name if fmt == "frames" else None
    if frame_dir is not None:
        frame_dir.mkdir(parents=True, exist_ok=True)
    positives = 0
    # VideoWriter's context aborts (no file left) on an exception and finalises otherwise
    video = (
        VideoWriter(video_path, cfg.fps, (cfg.width, cfg.height)) if video_path else contextlib.nullcontext()
    )
    with video as writer:
        for i, (frame, mask) in enumerate(render_clip(cfg)):
            if writer is not None:
                writer.write(frame)
            elif not cv2.imwrite(str(frame_dir / f"{i:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise OutputError(
                    "cannot write a frame", path=frame_dir, fix="check free space and permissions"
                )
            write_mask(gt_dir / f"{i:06d}.png", mask)
            positives += bool(mask.any())
            if progress is not None:
                progress(i + 1)
    (out / f"{name}.json").write_text(json.dumps({"generator": "vps synth", **asdict(cfg)}, indent=2) + "\n")
    return SynthOutput(name, video_path, frame_dir, gt_dir, cfg.frames, positives)
