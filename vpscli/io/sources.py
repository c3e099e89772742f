"""Frame sources: video files and frame folders, and how command-line inputs map to them.

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
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from vpscli.errors import InputError, UsageError
from vpscli.io.frames import Frame
from vpscli.io.images import read_rgb
from vpscli.io.naming import natural_sorted
from vpscli.io.probe import VideoProbe, open_container, probe_video, video_stream
from vpscli.io.run_folder import index_name

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
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
#: frame rate assumed for frame folders unless the caller gives one
DEFAULT_FOLDER_FPS = Fraction(25)


@dataclass
class Truncation:
    """Decoding stopped before the frame count the probe announced."""

    decoded: int
    expected: int

    def message(self, path: str) -> str:
        return (
            f"{path}: decoding stopped at frame {self.decoded} of {self.expected} "
            f"(the file is truncated or damaged); the {self.decoded} decoded frames were used"
        )


class VideoFileSource:
    """Frames of a video file, decoded by PyAV: RGB, rotation applied once, exact timestamps.

    Example: ``src = VideoFileSource("clip.mp4"); src.probe().fps; next(iter(src)).image``.

    Timestamps are each frame's presentation timestamp × the stream's time base, counted
    from the stream's start (exact for variable-frame-rate files). Frames are decoded one
    at a time (memory does not depend on the video's length); decoding errors inside the
    stream skip the damaged packet, and a file that ends early is reported in
    :attr:`truncation` after a full iteration.

    Why PyAV and not OpenCV (which decoded before): measured by ``benchmarks/bench_io.py``
    on the same H.264 files, RGB output, PyAV decodes as fast or faster (table in the
    README, "Inputs vps reads"), and its timestamps are the stream's own instead of
    OpenCV's millisecond estimate. FFmpeg's decoders give bit-identical frames whatever
    the number of threads, so threading never changes a result.
    """

    kind = "video"

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        self._probe: VideoProbe | None = None
        #: set after a full iteration when fewer frames decoded than probed
        self.truncation: Truncation | None = None
        #: frames actually decoded by the last full iteration
        self.decoded_count: int | None = None

    def probe(self) -> VideoProbe:
        if self._probe is None:
            self._probe = probe_video(self.path)
        return self._probe

    def __iter__(self) -> Iterator[Frame]:
        import cv2
        from av.video.reformatter import Interpolation, VideoReformatter

        probe = self.probe()
        container = open_container(self.path)
        index = 0
        try:
            stream = video_stream(container, self.path)
            # frame + slice threads; FFmpeg's decoders are bit-exact at any thread count
            stream.thread_type = "AUTO"
            time_base = Fraction(stream.time_base)
            start = stream.start_time
            # cv2.rotate writes the turned image in one pass (np.rot90 + a copy is slower)
            rotate = {
                90: cv2.ROTATE_90_COUNTERCLOCKWISE,
                180: cv2.ROTATE_180,
                270: cv2.ROTATE_90_CLOCKWISE,
            }.get(probe.rotation)
            # one converter for the whole video (it keeps its scaler set up); bicubic is what
            # OpenCV used, and only matters for >8-bit sources (8-bit 4:2:0 converts exactly)
            to_rgb = VideoReformatter()
            for frame in _decode(container, stream):
                if start is None:
                    start = frame.pts
                timestamp = float((frame.pts - start) * time_base)
                rgb: np.ndarray = to_rgb.reformat(
                    frame, format="rgb24", interpolation=Interpolation.BICUBIC
                ).to_ndarray()
                if rotate is not None:  # display matrix: counter-clockwise, as ffmpeg's autorotation turns it
                    rgb = cv2.rotate(rgb, rotate)
                yield Frame(
                    index=index, timestamp=timestamp, image=np.ascontiguousarray(rgb), name=index_name(index)
                )
                index += 1
        finally:
            container.close()
        self.decoded_count = index
        if index == 0:
            raise InputError(
                f"no frame could be decoded (the container announces {probe.expected_frames}; "
                "the file is truncated or damaged)",
                path=self.path,
                fix="copy or export the video again",
            )
        expected = probe.expected_frames
        self.truncation = Truncation(index, expected) if index < expected else None

    def __repr__(self) -> str:
        return f"VideoFileSource({str(self.path)!r})"


def _decode(container, stream) -> Iterator:
    """Decoded frames of ``stream`` in display order; damaged packets are skipped, and a
    read error ends the stream (the frames the decoder still holds are flushed out)."""
    import av

    ctx = stream.codec_context
    try:
        for packet in container.demux(stream):
            try:
                # the last packet PyAV yields is empty: it flushes the decoder
                frames = ctx.decode(packet)
            except av.error.EOFError:
                return
            except av.error.FFmpegError:
                continue  # a damaged packet; the decoder resynchronises on the next ones
            yield from frames
        return
    except av.error.FFmpegError:
        pass  # reading stopped inside the file (damage): flush below
    try:
        yield from ctx.decode(None)
    except av.error.FFmpegError:
        return


class FrameFolderSource:
    """Frames stored as image files in one folder, in natural order (or the ``files`` given, in
    their order: training validation runs a case in the toolbox's frame order this way).

    Timestamps are ``index / fps`` (``fps`` defaults to 25, said in the probe). Every frame
    must have the first frame's size.

    Example: ``for frame in FrameFolderSource("Frame/case1"): frame.image  # (H, W, 3) uint8 RGB``.
    """

    kind = "frames"

    def __init__(
        self,
        folder: str | Path,
        name: str | None = None,
        fps: float | Fraction | None = None,
        files: list[Path] | None = None,
    ):
        self.path = Path(folder)
        self.name = name or self.path.name
        if not self.path.is_dir():
            raise InputError("folder not found", path=self.path, fix="check the path")
        self.files = (
            [Path(f) for f in files]
            if files is not None
            else natural_sorted(
                p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
        )
        if not self.files:
            raise InputError(
                "no frames in folder (expected jpg, png, bmp or tif files)",
                path=self.path,
                fix="pass the folder that holds the frame images",
            )
        if fps is not None and not fps > 0:
            raise UsageError(f"--fps must be positive, got {fps}", fix="give the frames' rate, e.g. --fps 25")
        self.fps = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FOLDER_FPS
        self._probe: VideoProbe | None = None
        self.truncation: Truncation | None = None
        self.decoded_count: int | None = None

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self.files]

    def _read(self, file: Path) -> np.ndarray:
        return read_rgb(file)

    def probe(self) -> VideoProbe:
        if self._probe is None:
            first = self._read(self.files[0])
            n = len(self.files)
            self._probe = VideoProbe(
                path=str(self.path),
                kind="frames",
                width=first.shape[1],
                height=first.shape[0],
                fps=self.fps,
                frame_count=n,
                header_frame_count=n,
                duration=n / float(self.fps),
                rotation=0,
                vfr=False,
                codec=self.files[0].suffix.lower().lstrip("."),
                pix_fmt="rgb24",
            )
        return self._probe

    def __iter__(self) -> Iterator[Frame]:
        probe = self.probe()
        for i, file in enumerate(self.files):
            img = self._read(file)
            if (img.shape[1], img.shape[0]) != (probe.width, probe.height):
                raise InputError(
                    f"frame is {img.shape[1]}x{img.shape[0]} but the folder's first frame is "
                    f"{probe.width}x{probe.height}",
                    path=file,
                    fix="all frames of a folder must have one size; resize or move this frame",
                )
            yield Frame(index=i, timestamp=i / float(self.fps), image=img, name=file.stem)
        self.decoded_count = len(self.files)

    def __repr__(self) -> str:
        return f"FrameFolderSource({str(self.path)!r})"


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
