"""``export_masks``: a mask folder → one annotation-tool format (what ``vps export`` runs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vpscli.errors import UsageError
from vpscli.export import FORMATS
from vpscli.export.mask_sequence import MaskSequence, load_mask_sequence


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        format: the format name.
        path: the main file or folder written.
        frames: masks exported; instances/tracks: polyps found over them.
        frames_without_mask: source frames that had no mask file (not exported).
        source_frames: frames written by ``--include-frames`` (0 without it).
        frames_folder: where those frames went.
    """

    format: str
    path: Path
    frames: int
    instances: int
    tracks: int
    frames_without_mask: int
    source_frames: int = 0
    frames_folder: Path | None = None
    notes: list[str] = field(default_factory=list)


class _Counting:
    """Wraps the frame iterator to count what went through it."""

    def __init__(self, frames):
        self._frames = frames
        self.frames = 0
        self.instances = 0
        self.tracks: set[int] = set()

    def __iter__(self):
        for frame in self._frames:
            self.frames += 1
            self.instances += len(frame.instances)
            self.tracks.update(inst.track_id for inst in frame.instances)
            yield frame


def _frames_folder(fmt: str, out: Path, video: str) -> tuple[Path, object]:
    from vpscli.export.cvat_mask import cvat_frame_name
    from vpscli.export.davis import davis_frame_name

    if fmt == "davis":
        return out / "JPEGImages" / video, davis_frame_name
    return out / "images", cvat_frame_name


def export_masks(masks: str | Path, fmt: str, out: str | Path, *, video: str | Path | None = None,
                 probs: str | Path | None = None, label: str = "polyp", min_area: int = 0,
                 include_frames: bool = False) -> ExportResult:
    """Export the masks under ``masks`` as ``fmt`` into the folder ``out``.

    Args:
        masks: ``vps segment`` output folder (``masks/``, ``frames.csv``, ``run.json``) or a mask folder.
        fmt: one of :data:`vpscli.export.FORMATS`.
        out: output folder (created; files of a previous export are replaced).
        video: the source video/frame folder; checks mask size and frame count, and gives frames.
        probs: probability maps (``floor(255·p)``) for per-instance scores.
        label: the label name in the annotation tool.
        min_area: drop connected components smaller than this many pixels (every format).
        include_frames: also write the decoded frames of ``video``, named to match.

    Raises:
        UsageError: unknown format, ``--include-frames`` without ``--video``, bad ``--min-area``/``--label``.
        InputError: no masks, masks of different sizes or not fitting ``video``.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", fix=f"use one of: {', '.join(FORMATS)}")
    if include_frames and video is None:
        raise UsageError("--include-frames needs --video", fix="pass --video SOURCE (the segmented video)")
    if min_area < 0:
        raise UsageError(f"--min-area must be ≥ 0, got {min_area}", fix="pass a pixel count such as 50")
    if not label or any(c in label for c in ':,<>"&\n'):
        raise UsageError(f"--label {label!r} cannot be used in labelmaps/XML", fix="use a plain name such as polyp")
    source = None
    video_size = video_frames = None
    if video is not None:
        from vpscli.io.sources import open_source

        source = open_source(video)
        probe = source.probe()
        video_size, video_frames = (probe.width, probe.height), probe.frame_count
    sequence = load_mask_sequence(masks, probs=probs, video_size=video_size, video_frame_count=video_frames)
    out = Path(out)
    path = _write(sequence, fmt, out, label, min_area, counting := _Counting(_frames(sequence, min_area)))
    result = ExportResult(fmt, path, counting.frames, counting.instances, len(counting.tracks),
                          sequence.missing_frames)
    if include_frames and source is not None:
        from vpscli.export.source_frames import write_source_frames

        folder, stem = _frames_folder(fmt, out, sequence.name)
        result.source_frames = write_source_frames(source, folder, stem, (sequence.width, sequence.height))
        result.frames_folder = folder
    return result


def _frames(sequence: MaskSequence, min_area: int):
    from vpscli.export.instances import frame_instances

    return frame_instances(sequence, min_area)


def _write(sequence: MaskSequence, fmt: str, out: Path, label: str, min_area: int, frames) -> Path:
    if fmt == "cvat-mask":
        from vpscli.export.cvat_mask import write_cvat_mask

        return write_cvat_mask(frames, out, label)
    if fmt == "cvat-video":
        from vpscli.export.cvat_video import write_cvat_video

        return write_cvat_video(frames, out, sequence.name, sequence.frame_count, sequence.width,
                                sequence.height, label)
    if fmt == "coco":
        from vpscli.export.coco import write_coco

        return write_coco(frames, out, sequence.width, sequence.height, label,
                          description=f"vps export of {sequence.name}")
    if fmt == "labelstudio":
        from vpscli.export.labelstudio import model_version, write_labelstudio

        return write_labelstudio(frames, out, sequence.name, sequence.width, sequence.height,
                                 model_version(sequence.model, sequence.weights_sha256), label)
    from vpscli.export.davis import write_davis

    return write_davis(frames, out, sequence.name)
