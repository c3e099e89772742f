"""The masks to export: which file is which frame, their size, and what the run says about them.

Frame indices are 0-based source frame indices:

- a ``vps segment`` layout (every mask named by a 6-digit number, ``000123.png``) uses the
  number as the frame index, so frames skipped by ``--stride`` stay where they were;
- any other folder (``1.png``, ``case_image0001.png``…) is taken in natural order, frame 0 first

(:func:`vpscli.io.run_folder.number_files`).

A mask is foreground where its 8-bit value is > 127 (masks are 0/255 as ``vps segment`` writes
them; palette/1-bit/RGB masks are converted by :func:`vpscli.io.masks.read_mask`).

Metadata (all optional): model name and threshold from ``run.json`` via
:func:`vpscli.render.mask_set.read_run_info` (with ``weights_sha256``),
per-frame confidence (``max_prob``) from ``frames.csv``, and probability maps (``floor(255·p)``)
from ``--probs`` or a ``probs/`` folder beside ``masks/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from vpscli.errors import InputError
from vpscli.io.masks import _damage, list_masks, read_mask
from vpscli.io.run_folder import MASKS, RunFolder, number_files


@dataclass(frozen=True)
class FrameMask:
    """One mask file and the 0-based source frame it belongs to."""

    index: int
    path: Path


@dataclass
class MaskSequence:
    """A video's masks, in frame order.

    Attributes:
        name: the video's name (the ``vps segment`` output folder, else the mask folder).
        folder: the folder holding the mask images.
        frames: masks sorted by frame index; frames without a mask file are absent.
        width, height: size of every mask (all masks must agree).
        frame_count: frames in the source: from ``--video`` when given, else last index + 1.
        model: model name from ``run.json`` (``None`` when unknown).
        weights_sha256: weights checksum from ``run.json`` (``None`` when unknown).
        confidence: frame index → confidence in [0, 1] (``frames.csv`` ``max_prob``).
        probs_folder: folder of probability maps matched to masks by file stem, if any.
    """

    name: str
    folder: Path
    frames: list[FrameMask]
    width: int
    height: int
    frame_count: int
    model: str | None = None
    weights_sha256: str | None = None
    confidence: dict[int, float] = field(default_factory=dict)
    probs_folder: Path | None = None

    @property
    def missing_frames(self) -> int:
        """Number of source frames that have no mask file."""
        return self.frame_count - len(self.frames)

    @property
    def missing_indices(self) -> list[int]:
        """The 0-based source frames that have no mask file, in order."""
        present = {f.index for f in self.frames}
        return [i for i in range(self.frame_count) if i not in present]

    def read_foreground(self, frame: FrameMask) -> np.ndarray:
        """Frame's mask as ``(H, W)`` bool (value > 127)."""
        return read_mask(frame.path).array > 127

    def read_probability(self, frame: FrameMask) -> np.ndarray | None:
        """Frame's probability map as ``(H, W)`` float32 in [0, 1], or ``None`` when there is none."""
        if self.probs_folder is None:
            return None
        for ext in (".png", ".tif", ".tiff", ".bmp"):
            candidate = self.probs_folder / f"{frame.path.stem}{ext}"
            if candidate.is_file():
                prob = read_mask(candidate).array
                if prob.shape != (self.height, self.width):
                    raise InputError(
                        f"probability map is {prob.shape[1]}x{prob.shape[0]}, masks are "
                        f"{self.width}x{self.height}",
                        path=candidate,
                        fix="pass the probs/ folder written with these masks",
                    )
                return prob.astype(np.float32) / 255.0
        return None

    def __iter__(self) -> Iterator[tuple[FrameMask, np.ndarray]]:
        """Yield ``(frame, (H, W) bool mask)`` in frame order, reading one mask at a time."""
        for frame in self.frames:
            yield frame, self.read_foreground(frame)


def frame_ranges(indices: list[int], limit: int = 4) -> str:
    """Sorted frame indices as runs of consecutive frames: ``52–99``, ``2, 9, 14–16``; past ``limit``
    runs the rest is counted: ``2, 9, 14–16, 20 and 7 more frames``.

    Runs, because masks go missing in runs (a cut video, an interrupted run) and a run is what the
    user looks up in the video.
    """
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(f"{a}–{b}" if b > a else str(a) for a, b in runs[:limit])
    if len(runs) > limit:
        rest = sum(b - a + 1 for a, b in runs[limit:])
        text += f" and {rest} more frame{'s' if rest != 1 else ''}"
    return text


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(
            f"cannot read this mask ({_damage(path, e)})",
            path=path,
            fix="replace the damaged file with an 8-bit PNG",
        ) from None


def load_mask_sequence(
    masks: str | Path,
    probs: str | Path | None = None,
    video_size: tuple[int, int] | None = None,
    video_frame_count: int | None = None,
) -> MaskSequence:
    """Describe the masks under ``masks`` (a ``vps segment`` output folder or a mask folder).

    Args:
        masks: the folder.
        probs: probability-map folder; default ``probs/`` beside ``masks/`` when it exists.
        video_size: ``(width, height)`` of ``--video``; masks of another size are an error.
        video_frame_count: frames in ``--video``; a mask for a later frame is an error.

    Raises:
        InputError: no masks, masks of different sizes, masks that do not fit the video.
    """
    from vpscli.render.mask_set import read_run_info

    root = Path(masks)
    if not root.exists():
        raise InputError("mask folder not found", path=root, fix="check the path")
    folder = RunFolder.mask_folder(root)
    files = list_masks(folder)
    if not files:
        raise InputError(
            "no mask images in folder (expected png/bmp/tif/jpg)",
            path=folder,
            fix="pass a vps segment output folder or a folder of mask PNGs",
        )
    frames = [FrameMask(index, path) for index, path in number_files(files)]

    width, height = _image_size(frames[0].path)
    for frame in frames[1:]:
        size = _image_size(frame.path)
        if size != (width, height):
            raise InputError(
                f"mask is {size[0]}x{size[1]} but {frames[0].path.name} is {width}x{height}",
                path=frame.path,
                fix="export masks of one video at one resolution",
            )
    if video_size is not None and tuple(video_size) != (width, height):
        raise InputError(
            f"masks are {width}x{height} but --video frames are {video_size[0]}x{video_size[1]}",
            path=folder,
            fix="pass the video these masks were segmented from "
            "(vps segment writes masks at the source resolution)",
        )
    last = frames[-1].index
    if video_frame_count is not None:
        if video_frame_count == 0:
            raise InputError("--video has no frames", fix="pass a video that decodes")
        if last >= video_frame_count:
            raise InputError(
                f"mask for frame {last} but --video has {video_frame_count} frames",
                path=frames[-1].path,
                fix="pass the video these masks were segmented from",
            )
    frame_count = video_frame_count if video_frame_count is not None else last + 1

    info = read_run_info(folder)
    if probs is not None:
        probs_folder: Path | None = Path(probs)
        if not probs_folder.is_dir():
            raise InputError("probability folder not found", path=probs_folder, fix="check --probs")
    else:
        beside = RunFolder.of_mask_folder(folder).probs_dir
        probs_folder = beside if beside.is_dir() else None
    name = folder.parent.name if folder.name == MASKS else folder.name
    return MaskSequence(
        name=name or "video",
        folder=folder,
        frames=frames,
        width=width,
        height=height,
        frame_count=frame_count,
        model=info.model,
        weights_sha256=info.weights_sha256,
        confidence=dict(info.max_prob),
        probs_folder=probs_folder,
    )
