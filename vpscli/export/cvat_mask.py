"""CVAT "Segmentation mask 1.1" zip.

Layout of ``OUT/segmentation_mask.zip`` (upload with Task → Actions → Upload annotations):

- ``labelmap.txt``: ``# label:color_rgb:parts:actions``, ``background:0,0,0::``, ``<label>:128,0,0::``;
- ``ImageSets/Segmentation/default.txt``: ``frame_XXXXXX`` per exported frame (empty ones too);
- ``SegmentationClass/frame_XXXXXX.png``: P-mode PNG, index 0 background, 1 polyp; the palette
  gives index 1 the labelmap colour, so readers that see indices and readers that see RGB both
  find only declared values (CVAT rejects undeclared ones such as a raw 255);
- ``SegmentationObject/frame_XXXXXX.png``: P-mode PNG, index k = k-th instance of the frame
  (VOC colours), 0 background.

Names are 6-digit 0-based source frame indices, the names CVAT gives the frames of a task
created from the same video.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from vpscli.export.instances import FrameInstances
from vpscli.export.output_files import make_folder, palette_png_bytes, voc_palette
from vpscli.io.atomic import atomic_path

ZIP_NAME = "segmentation_mask.zip"
#: colour of the polyp label (VOC/DAVIS index-1 colour)
LABEL_COLOUR = (128, 0, 0)


def cvat_frame_name(index: int) -> str:
    """CVAT's name for a video task frame: ``frame_000123``."""
    return f"frame_{index:06d}"


def labelmap_text(label: str) -> str:
    return (
        "# label:color_rgb:parts:actions\n"
        "background:0,0,0::\n"
        f"{label}:{','.join(str(v) for v in LABEL_COLOUR)}::\n"
    )


def write_cvat_mask(frames: Iterable[FrameInstances], out: Path, label: str = "polyp") -> Path:
    """Write ``OUT/segmentation_mask.zip``; returns its path."""
    make_folder(out)
    path = out / ZIP_NAME
    class_palette = [(0, 0, 0), LABEL_COLOUR]
    object_palette = voc_palette()
    names = []
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labelmap.txt", labelmap_text(label))
        for frame in frames:
            name = cvat_frame_name(frame.index)
            names.append(name)
            archive.writestr(
                f"SegmentationClass/{name}.png", palette_png_bytes(frame.mask.astype(np.uint8), class_palette)
            )
            objects = np.zeros(frame.mask.shape, dtype=np.uint8)
            for k, inst in enumerate(frame.instances[:255], start=1):
                objects[inst.mask] = k
            archive.writestr(f"SegmentationObject/{name}.png", palette_png_bytes(objects, object_palette))
        archive.writestr("ImageSets/Segmentation/default.txt", "".join(f"{n}\n" for n in names))
    return path
