"""A synthetic clip: what to render (:class:`SynthConfig`), the frames with their exact masks
(:func:`render_clip`) and the files ``vps synth`` writes (:func:`write_clip`)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vpscli.errors import OutputError, UsageError
from vpscli.synth.layers import (
    add_highlights,
    burn_in_text,
    camera_path,
    fov_mask,
    make_polyp,
    motion_kernel,
    mucosa_texture,
    paint_polyps,
)

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


def render_clip(cfg: SynthConfig, draw_polyps: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(frame, mask)`` per frame: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` bool ground truth.

    ``draw_polyps=False`` renders the identical clip with the polyps left out (same camera,
    highlights, noise); its masks are still the polyps' would-be areas.

    >>> frames = list(render_clip(SynthConfig(frames=2, width=64, height=48, seed=1)))
    >>> frame, mask = frames[0]
    >>> frame.shape, frame.dtype, mask.shape, mask.dtype
    ((48, 64, 3), dtype('uint8'), (48, 64), dtype('bool'))
    >>> without = list(render_clip(SynthConfig(frames=2, width=64, height=48, seed=1), draw_polyps=False))
    >>> bool((frames[1][0] != without[1][0]).any(axis=2)[~frames[1][1]].any())  # polyps change only their masks
    False
    """
    import cv2

    cfg.validate()
    seeds = np.random.SeedSequence(cfg.seed).spawn(6 + cfg.n_polyps)
    tex_rng, cam_rng, spec_rng, noise_rng, text_rng, shade_rng = (np.random.default_rng(s) for s in seeds[:6])
    fw, fh = cfg.width, cfg.height
    world = (int(fh * WORLD_SCALE), int(fw * WORLD_SCALE))
    mucosa = mucosa_texture(tex_rng, world)
    polyps = [make_polyp(np.random.default_rng(s), world, (fw, fh)) for s in seeds[6:]]
    camera = camera_path(cam_rng, (fw, fh), world)
    fov = fov_mask(fw, fh)
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
        kernel = motion_kernel(dx, dy)
        frame = cv2.warpAffine(mucosa, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if kernel is not None:
            frame = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)
        mask = np.zeros((fh, fw), bool)
        caps = paint_polyps(frame, mask, polyps, m, t, (xx, yy), light, kernel, draw_polyps)
        frame = add_highlights(frame, spots, caps, m, light)
        frame *= vignette[..., None]
        frame += noise_rng.normal(0, 2.0, frame.shape).astype(np.float32)
        out = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        out[~fov] = 0
        mask &= fov
        if cfg.text:
            burn_in_text(out, mask, overlay_text, t)
        _ = text_rng  # reserved: keeps the spawn order stable if text styles become random
        yield out, mask


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
