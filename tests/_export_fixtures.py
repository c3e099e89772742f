"""Fixtures for the export tests: a synthetic clip segmented "perfectly", in the vps segment layout."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpscli.io.masks import list_masks, read_mask, write_mask
from vpscli.synth import SynthConfig, write_clip

#: frames where the polyp has "left the view" (masks blanked)
GAP = range(4, 7)
N_FRAMES = 12
WIDTH, HEIGHT = 96, 64
SHA = "ab12cd34ef56" + "0" * 52


@dataclass
class SegmentedClip:
    video: Path
    run_dir: Path  # OUT/<video>/ of vps segment: masks/, probs/, frames.csv, run.json
    masks: dict[int, np.ndarray]  # frame index → (H, W) bool, what the export must reproduce
    confidence: dict[int, float]


def make_segmented_clip(root: Path) -> SegmentedClip:
    """A 12-frame 96x64 clip whose polyp leaves the view in frames 4–6, laid out as vps segment writes it."""
    clip = write_clip(
        root / "synth",
        SynthConfig(frames=N_FRAMES, width=WIDTH, height=HEIGHT, seed=3, text=False),
        "mp4",
        "clip",
    )
    run_dir = root / "seg" / "clip"
    (run_dir / "masks").mkdir(parents=True)
    (run_dir / "probs").mkdir()
    masks, confidence = {}, {}
    for i, path in enumerate(list_masks(clip.gt)):
        mask = read_mask(path).array > 127
        if i in GAP:
            mask[:] = False
        masks[i] = mask
        write_mask(run_dir / "masks" / f"{i:06d}.png", mask)
        prob = np.where(mask, 200 + i, 10).astype(np.uint8)
        from PIL import Image

        Image.fromarray(prob).save(run_dir / "probs" / f"{i:06d}.png")
        confidence[i] = round((200 + i) / 255 if mask.any() else 10 / 255, 4)
    with (run_dir / "frames.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "pts", "timecode", "present", "area", "max_prob"])
        for i, m in masks.items():
            w.writerow([i, i / 25, "", int(m.any()), int(m.sum()), confidence[i]])
    (run_dir / "run.json").write_text(
        json.dumps({"model": "pns_plus", "weights_sha256": SHA, "threshold": 0.5})
    )
    return SegmentedClip(clip.video, run_dir, masks, confidence)


def copy_without(run_dir: Path, dest: Path, drop: list[int]) -> Path:
    """A copy of a segment output without the masks of frames ``drop``."""
    shutil.copytree(run_dir, dest)
    for i in drop:
        (dest / "masks" / f"{i:06d}.png").unlink()
    return dest
