"""Frame sources: video files (:mod:`vpscli.io.video_file`) and frame folders (:mod:`vpscli.io.frame_folder`),
and how command-line inputs map to them.

A source streams :class:`~vpscli.io.frames.Frame` objects one at a time (memory does not
depend on video length) and knows its :class:`~vpscli.io.probe.VideoProbe`.

Inputs accepted by :func:`discover_sources`:

- a video file (anything FFmpeg decodes: mp4, avi, mkv, mov, mpg, webm, ...), decoded by PyAV;
- a folder of frames (jpg/png/bmp/tif), sorted naturally (``img2`` before ``img10``);
- a SUN-SEG-style root with ``Frame/<case>/``, or a folder of case folders such as that
  ``Frame/`` itself (each case is one source, in natural order);
- a folder of videos (each video is one source);
- a glob pattern (``"videos/*.mp4"``).
"""

from __future__ import annotations

import glob as _glob
import os
from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.frame_folder import IMAGE_EXTENSIONS, FrameFolderSource
from vpscli.io.naming import natural_sorted
from vpscli.io.video_file import VideoFileSource

__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameSource",
    "VideoFileSource",
    "FrameFolderSource",
    "open_source",
    "discover_sources",
    "distinct_names",
    "is_vps_output",
]

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".avi",
        ".mkv",
        ".mov",
        ".mpg",
        ".mpeg",
        ".webm",
        ".wmv",
        ".flv",
        ".ts",
        ".mts",
        ".3gp",
        ".ogv",
    }
)


FrameSource = VideoFileSource | FrameFolderSource


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def is_vps_output(folder: Path) -> bool:
    """``folder`` is something ``vps segment`` wrote: a run folder (``run.json``), an output root
    (``batch.json``, or run folders inside). Such folders are never taken for inputs."""
    try:
        if (folder / "run.json").is_file() or (folder / "batch.json").is_file():
            return True
        return any(c.is_dir() and (c / "run.json").is_file() for c in folder.iterdir())
    except OSError:
        return False


def _folder_sources(folder: Path, fps) -> list[FrameSource]:
    if is_vps_output(folder):
        raise InputError(
            "is a vps segment output folder, not an input",
            path=folder,
            fix="pass the videos or frame folders it was made from",
        )
    frame_root = folder / "Frame"
    if frame_root.is_dir():  # SUN-SEG style root: Frame/<case>/
        cases = natural_sorted(p for p in frame_root.iterdir() if p.is_dir() and not is_vps_output(p))
        if not cases:
            raise InputError(
                "Frame/ has no case folders", path=frame_root, fix="expected Frame/<case>/<frame>.jpg"
            )
        return _case_sources(cases, fps)
    entries = [p for p in folder.iterdir() if p.is_file()]
    if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entries):
        return [FrameFolderSource(folder, fps=fps)]
    videos = natural_sorted(p for p in entries if p.suffix.lower() in VIDEO_EXTENSIONS)
    if videos:
        return [VideoFileSource(v) for v in videos]
    frames = folder.parent / "Frame"
    if folder.name == "GT" and frames.is_dir():  # its case folders hold masks, which would pass for frames
        raise InputError(
            "is the ground-truth folder of a SUN-SEG root, not frames",
            path=folder,
            fix=f"pass {frames} or {folder.parent}",
        )
    # a folder of case folders (a SUN-SEG Frame/ given directly, or any such collection): read
    # as a SUN-SEG root reads its Frame/, so a case folder without frames is an error either way
    # vps's own outputs (an output root inside the input folder: `cd study && vps segment .`) are skipped
    cases = natural_sorted(p for p in folder.iterdir() if p.is_dir() and not is_vps_output(p))
    if any(_holds_images(c) for c in cases):
        return _case_sources(cases, fps)
    raise InputError(
        "no frames, videos or case folders of frames found",
        path=folder,
        fix="pass a video file, a folder of frame images, a folder of such folders (one per case), "
        "or a SUN-SEG root with Frame/<case>/",
    )


def _holds_video(path: Path) -> bool:
    """A file given by name whose extension vps does not list (``.dat`` from a VCD recorder, ``.vob``,
    an extension-less export) is a video when FFmpeg finds a video stream in it."""
    try:
        import av

        with av.open(str(path)) as container:
            return bool(container.streams.video)
    except Exception:  # PyAV raises its own error types for anything that is not media
        return False


def _case_sources(cases: list[Path], fps) -> list[FrameSource]:
    """One frame-folder source per case folder, named after it."""
    return [FrameFolderSource(c, name=c.name, fps=fps) for c in cases]


def _holds_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in folder.iterdir())


def open_source(path: str | Path, fps: float | None = None) -> FrameSource:
    """Open one video file or frame folder as a source (see :func:`discover_sources` for more)."""
    sources = discover_sources([str(path)], fps=fps)
    if len(sources) != 1:
        raise InputError(
            f"holds {len(sources)} videos or cases, expected one",
            path=path,
            fix="pass one video or one frame folder",
        )
    return sources[0]


def discover_sources(inputs: list[str], fps: float | None = None) -> list[FrameSource]:
    """Map command-line inputs (files, folders, SUN-SEG roots, globs) to sources.

    ``fps`` applies to frame folders. Raises :class:`InputError` for inputs that are
    missing, empty or of an unsupported type. Output names are made unique by
    :func:`distinct_names`.
    """
    sources: list[FrameSource] = []
    for text in inputs:
        if _is_glob(text) and not Path(text).exists():
            matches = natural_sorted(Path(m) for m in _glob.glob(text, recursive=True))
            if not matches:
                raise InputError(
                    "no file matches this pattern", path=text, fix="check the pattern and quote it"
                )
            for m in matches:
                if m.is_dir() or m.suffix.lower() in VIDEO_EXTENSIONS:
                    sources.extend(discover_sources([str(m)], fps=fps))
            continue
        path = Path(text)
        if not path.exists():
            raise InputError("not found", path=path, fix="check the path")
        if path.is_dir():
            sources.extend(_folder_sources(path, fps))
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            raise InputError(
                "is a single image, not a video",
                path=path,
                fix=f"pass its folder ({path.parent}) to use all frames in it",
            )
        elif path.suffix.lower() in VIDEO_EXTENSIONS or _holds_video(path):
            sources.append(VideoFileSource(path))
        else:
            raise InputError(
                f"unsupported file type '{path.suffix or '(none)'}'",
                path=path,
                fix="pass a video FFmpeg can read ("
                + ", ".join(sorted(e.lstrip(".") for e in VIDEO_EXTENSIONS))
                + ", …) or a frame folder",
            )
    return distinct_names(sources)


def distinct_names(sources: list[FrameSource]) -> list[FrameSource]:
    """Give every source its own output name (``OUT/<name>/``), whatever the order of the inputs.

    A source is named after its file stem or folder. Where several sources share a name
    (``dayA/x.mp4``, ``dayB/x.mp4``), each of them is named by its path below the folder they
    have in common, joined with ``_`` (``dayA_x``, ``dayB_x``): the same inputs always get the same
    names, however they are ordered, so ``--resume`` finds its folders again. The same file given
    twice is kept once. Files of one name in one folder (``x.mp4``, ``x.avi``) keep their suffix
    (``x_mp4``, ``x_avi``).
    """
    unique: dict[Path, FrameSource] = {}
    for s in sources:
        unique.setdefault(s.path.resolve(), s)
    groups: dict[str, list[FrameSource]] = {}
    for s in unique.values():
        groups.setdefault(s.name, []).append(s)
    for name, group in groups.items():
        if len(group) < 2:
            continue
        paths = [s.path.resolve() for s in group]
        common = Path(os.path.commonpath([p.parent for p in paths]))
        relative = [p.relative_to(common).parts for p in paths]
        names = ["_".join([*parts[:-1], name]) for parts in relative]
        if len(set(names)) < len(names):  # x.mp4 and x.avi (or a folder x) side by side: keep the suffix
            names = ["_".join(parts).replace(".", "_") for parts in relative]
        for s, new_name in zip(group, names):
            s.name = new_name
    return list(unique.values())
