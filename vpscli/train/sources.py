"""Training data on disk: which folders hold what, as lists of frame/mask files.

Three kinds of folder are accepted (each ``--data DIR`` is one of them):

- ``video``: SUN-SEG layout, ``DIR/Frame/<case>/<frame>.{png,jpg}`` with masks
  ``DIR/GT/<case>/<frame>.png`` (matched by file stem). Clips are sampled from each case.
- ``image``: ``DIR/images/<id>.{jpg,png}`` with ``DIR/masks/<id>.{png,jpg}``: stills, used as
  pseudo-clips (one image, augmented independently per frame).
- ``negative``: ``DIR/Frame/<seq>/`` without ``GT/``: frames with no polyp (empty masks).

``DIR/Frame`` itself may be given (as a SUN-SEG split's ``TestDataset/Frame``): its cases,
with masks from ``DIR/GT`` when that exists, else negatives.

Frames inside a case are in natural order (``img2`` before ``img10``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.frame_folder import IMAGE_EXTENSIONS
from vpscli.io.naming import natural_sorted

__all__ = ["Sequence", "DataSource", "discover_source", "synth_source"]


KINDS = ("video", "image", "negative")


@dataclass(frozen=True)
class Sequence:
    """One case: ordered frame files and their mask files (``None`` for negatives).

    ``kind`` is ``video``, ``image`` (one still, a pseudo-clip) or ``negative``.
    """

    name: str
    kind: str
    frames: tuple[Path, ...]
    masks: tuple[Path | None, ...]

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class DataSource:
    """A ``--data`` folder: its kind and its sequences (images: one sequence per image)."""

    root: Path
    kind: str
    sequences: tuple[Sequence, ...]

    @property
    def n_frames(self) -> int:
        return sum(len(s) for s in self.sequences)

    def describe(self) -> str:
        unit = "images" if self.kind == "image" else f"frames in {len(self.sequences)} cases"
        return f"{self.root} ({self.kind}: {self.n_frames} {unit})"


def _images(folder: Path) -> list[Path]:
    return natural_sorted(
        [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    )


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in _images(folder)}


def _video(root: Path, frame_root: Path, gt_root: Path | None) -> DataSource:
    """Cases ``frame_root/<case>/`` with masks ``gt_root/<case>/`` (``None``: negatives); ``root`` names the source."""
    negative = gt_root is None
    cases = natural_sorted([d for d in frame_root.iterdir() if d.is_dir()])
    sequences = []
    for case in cases:
        frames = _images(case)
        if not frames:
            continue
        if negative:
            masks: list[Path | None] = [None] * len(frames)
        else:
            gt_dir = gt_root / case.name
            if not gt_dir.is_dir():
                raise InputError(
                    "case has frames but no GT folder",
                    path=gt_dir,
                    fix="add the masks, or remove the case from Frame/",
                )
            gt = _by_stem(gt_dir)
            missing = [f for f in frames if f.stem not in gt]
            if missing:
                raise InputError(
                    f"no mask for frame {missing[0].name} ({len(missing)} frames lack one)",
                    path=gt_dir,
                    fix="every frame needs a mask with the same file stem",
                )
            masks = [gt[f.stem] for f in frames]
        sequences.append(
            Sequence(case.name, "negative" if negative else "video", tuple(frames), tuple(masks))
        )
    if not sequences:
        raise InputError(
            "no frames found under Frame/<case>/",
            path=frame_root,
            fix="put each case's frames in its own folder (SUN-SEG layout)",
        )
    return DataSource(root, "negative" if negative else "video", tuple(sequences))


def _image(root: Path) -> DataSource:
    images, masks = _images(root / "images"), _by_stem(root / "masks")
    if not images:
        raise InputError(
            "no images found", path=root / "images", fix="put the stills in images/ (jpg or png)"
        )
    missing = [p for p in images if p.stem not in masks]
    if missing:
        raise InputError(
            f"no mask for image {missing[0].name} ({len(missing)} images lack one)",
            path=root / "masks",
            fix="every image needs a mask with the same file stem",
        )
    seqs = tuple(Sequence(p.stem, "image", (p,), (masks[p.stem],)) for p in images)
    return DataSource(root, "image", seqs)


def discover_source(path: str | Path) -> DataSource:
    """Recognise a ``--data``/``--val`` folder (see the module doc) and list its files.

    Raises:
        InputError: missing folder, unknown layout, missing masks, no frames.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(
            "data folder not found", path=root, fix="check the path (see ../shared/data/README.md)"
        )
    if (root / "Frame").is_dir():
        return _video(root, root / "Frame", root / "GT" if (root / "GT").is_dir() else None)
    if root.name == "Frame" and any(d.is_dir() for d in root.iterdir()):  # DIR/Frame given directly
        gt = root.parent / "GT"
        return _video(root, root, gt if gt.is_dir() else None)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _image(root)
    splits = [d.name for d in (root / "train", root / "valid") if d.is_dir()]
    hint = (
        f"pass one split, e.g. {root / 'train'}"
        if splits
        else "use Frame/<case>/ + GT/<case>/ (videos), images/ + masks/ (stills) or Frame/<seq>/ alone (negatives); "
        "a Frame/ folder itself is accepted too"
    )
    raise InputError("not a training data folder", path=root, fix=hint)


def synth_source(
    out: str | Path, clips: int, frames: int, size: tuple[int, int], seed: int = 0
) -> DataSource:
    """Render ``clips`` synthetic clips of ``frames`` frames (``size`` = (H, W)) with
    :func:`vpscli.synth.write_clip` into ``out`` (reused when already there) and return them as
    a video source. Every fifth clip is a negative (no polyp)."""
    from vpscli.synth import SynthConfig, write_clip

    out = Path(out)
    for i in range(clips):
        name = f"synth{i:03d}"
        if (out / "GT" / name).is_dir() and len(list((out / "GT" / name).iterdir())) == frames:
            continue
        cfg = SynthConfig(
            frames=frames,
            width=size[1],
            height=size[0],
            seed=seed * 1000 + i,
            negative=i % 5 == 4,
            polyps=1 + (i % 3 == 2),
        )
        write_clip(out, cfg, "frames", name)
    return _video(out, out / "Frame", out / "GT")
