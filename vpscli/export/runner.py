"""``export_masks``: a mask folder → one annotation-tool format (what ``vps export`` runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vpscli.errors import OutputError, UsageError
from vpscli.export import FORMATS
from vpscli.export.mask_sequence import MaskSequence, frame_ranges, load_mask_sequence
from vpscli.export.output_files import StagedExport, existing_targets


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes:
        format: the format name.
        path: the main file or folder written.
        frames: masks exported; instances/tracks: polyps found over them.
        frames_without_mask: source frames that had no mask file (not exported).
        missing_frames: their 0-based indices.
        source_frames: frames written by ``--include-frames`` (0 without it).
        frames_folder: where those frames went.
        warnings: one-line warnings about data the export lacks (a partial or unfinished
            ``vps segment`` run, frames without a mask), for the caller to show.
        replaced: the paths (relative to the output folder) of a previous export that this one replaced.
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
    missing_frames: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)


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


def export_targets(fmt: str, video: str, include_frames: bool) -> list[Path]:
    """What an export of ``video`` as ``fmt`` writes, relative to the output folder (files and folders)."""
    from vpscli.export.coco import JSON_PATH
    from vpscli.export.cvat_mask import ZIP_NAME
    from vpscli.export.cvat_video import XML_NAME
    from vpscli.export.labelstudio import CONFIG_NAME, TASKS_NAME

    targets = {
        "cvat-mask": [Path(ZIP_NAME)],
        "cvat-video": [Path(XML_NAME)],
        "coco": [JSON_PATH],
        "labelstudio": [Path(TASKS_NAME), Path(CONFIG_NAME)],
        "davis": [Path("Annotations") / video],
    }[fmt]
    if include_frames:
        targets.append(_frames_folder(fmt, Path(), video)[0])
    return targets


def _frames_folder(fmt: str, out: Path, video: str) -> tuple[Path, object]:
    from vpscli.export.cvat_mask import cvat_frame_name
    from vpscli.export.davis import davis_frame_name

    if fmt == "davis":
        return out / "JPEGImages" / video, davis_frame_name
    return out / "images", cvat_frame_name


def export_masks(
    masks: str | Path,
    fmt: str,
    out: str | Path,
    *,
    video: str | Path | None = None,
    probs: str | Path | None = None,
    label: str = "polyp",
    min_area: int = 0,
    include_frames: bool = False,
    overwrite: bool = False,
) -> ExportResult:
    """Export the masks under ``masks`` as ``fmt`` into the folder ``out``.

    Args:
        masks: ``vps segment`` output folder (``masks/``, ``frames.csv``, ``run.json``) or a mask folder.
        fmt: one of :data:`vpscli.export.FORMATS`.
        out: output folder (created when missing). Other files in it are left alone.
        video: the source video/frame folder; checks mask size and frame count, and gives frames.
        probs: probability maps (``floor(255·p)``) for per-instance scores.
        label: the label name in the annotation tool.
        min_area: drop connected components smaller than this many pixels (every format).
        include_frames: also write the decoded frames of ``video``, named to match.
        overwrite: replace the files of a previous export in ``out`` (see :func:`export_targets`);
            without it they are an error. The new export is written in full beside them first, so a
            failing export leaves the previous one as it was.

    Raises:
        UsageError: unknown format, ``--include-frames`` without ``--video``, bad ``--min-area``/``--label``.
        InputError: no masks, masks of different sizes or not fitting ``video``.
        OutputError: ``out`` already holds what this export writes (without ``overwrite``), or
            cannot be written.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", fix=f"use one of: {', '.join(FORMATS)}")
    if include_frames and video is None:
        raise UsageError("--include-frames needs --video", fix="pass --video SOURCE (the segmented video)")
    if min_area < 0:
        raise UsageError(f"--min-area must be ≥ 0, got {min_area}", fix="pass a pixel count such as 50")
    if not label or any(c in label for c in ':,<>"&\n'):
        raise UsageError(
            f"--label {label!r} cannot be used in labelmaps/XML", fix="use a plain name such as polyp"
        )
    source = None
    video_size = video_frames = None
    if video is not None:
        from vpscli.io.sources import open_source

        source = open_source(video)
        probe = source.probe()
        # a damaged video decodes fewer frames than its packets list, and only the masks know how many
        # did (the partial run's warning says so): its frame count is then the masks' own
        video_size, video_frames = (probe.width, probe.height), None if probe.damaged else probe.frame_count
    sequence = load_mask_sequence(masks, probs=probs, video_size=video_size, video_frame_count=video_frames)
    out = Path(out)
    targets = export_targets(fmt, sequence.name, include_frames)
    existing = existing_targets(out, targets)
    if existing and not overwrite:
        # checked before any work: an export never replaces finished files the user did not ask to replace
        raise OutputError(
            f"already holds a {fmt} export ({', '.join(map(str, existing))})",
            path=out,
            fix="pass --overwrite to replace it, or choose another -o",
        )
    with StagedExport(out, targets) as stage:
        path = _write(
            sequence, fmt, stage, label, min_area, counting := _Counting(_frames(sequence, min_area))
        )
        result = ExportResult(
            fmt,
            out / path.relative_to(stage),
            counting.frames,
            counting.instances,
            len(counting.tracks),
            sequence.missing_frames,
            replaced=existing,
        )
        if include_frames and source is not None:
            from vpscli.export.source_frames import write_source_frames

            folder, stem = _frames_folder(fmt, stage, sequence.name)
            result.source_frames = write_source_frames(
                source, folder, stem, (sequence.width, sequence.height)
            )
            result.frames_folder = out / folder.relative_to(stage)
    result.missing_frames = sequence.missing_indices
    result.warnings = _warnings(masks, sequence)
    return result


def _warnings(masks: str | Path, sequence: MaskSequence) -> list[str]:
    """What the export lacks, said so that the user can act: which run is incomplete, which frames."""
    from vpscli.io.run_folder import RunFolder

    warnings = []
    partial = RunFolder.of(masks).partial_warning()
    if partial:
        warnings.append(partial)
    missing = sequence.missing_indices
    if missing:
        n = len(missing)
        warnings.append(
            f"{sequence.folder}: {n} source frame{'s have' if n != 1 else ' has'} no mask file and "
            f"{'are' if n != 1 else 'is'} not annotated in the export: frame{'s' if n != 1 else ''} "
            f"{frame_ranges(missing)}"
        )
    return warnings


def _frames(sequence: MaskSequence, min_area: int):
    from vpscli.export.instances import frame_instances

    return frame_instances(sequence, min_area)


def _write(sequence: MaskSequence, fmt: str, out: Path, label: str, min_area: int, frames) -> Path:
    if fmt == "cvat-mask":
        from vpscli.export.cvat_mask import write_cvat_mask

        return write_cvat_mask(frames, out, label)
    if fmt == "cvat-video":
        from vpscli.export.cvat_video import write_cvat_video

        return write_cvat_video(
            frames, out, sequence.name, sequence.frame_count, sequence.width, sequence.height, label
        )
    if fmt == "coco":
        from vpscli.export.coco import write_coco

        return write_coco(
            frames, out, sequence.width, sequence.height, label, description=f"vps export of {sequence.name}"
        )
    if fmt == "labelstudio":
        from vpscli.export.labelstudio import model_version, write_labelstudio

        return write_labelstudio(
            frames,
            out,
            sequence.name,
            sequence.width,
            sequence.height,
            model_version(sequence.model, sequence.weights_sha256),
            label,
        )
    from vpscli.export.davis import write_davis

    return write_davis(frames, out, sequence.name)
