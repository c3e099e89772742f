"""A folder of image files as a frame source, in natural order."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from vpscli.errors import InputError, UsageError
from vpscli.io.frames import Frame
from vpscli.io.images import read_rgb
from vpscli.io.naming import natural_sorted
from vpscli.io.probe import VideoProbe
from vpscli.io.video_file import Truncation

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})


#: frame rate assumed for frame folders unless the caller gives one
DEFAULT_FOLDER_FPS = Fraction(25)


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
