"""CVAT for video 1.1 XML: one track per polyp episode, masks as tight-box RLE.

``OUT/annotations.xml``::

    <annotations>
      <version>1.1</version>
      <meta><task> ... <size>N</size><mode>interpolation</mode><start_frame>0</start_frame>
        <stop_frame>N-1</stop_frame><labels><label><name>polyp</name>...</label></labels>
        <original_size><width>W</width><height>H</height></original_size></task></meta>
      <track id="0" label="polyp" source="auto">
        <mask frame="12" keyframe="1" outside="0" occluded="0" rle="0, 5, 3, ..." left=".." top=".."
              width=".." height=".." z_order="0"/>
        ...
        <mask frame="40" keyframe="1" outside="1" .../>   <!-- the episode has ended -->
      </track>
    </annotations>

A track is an episode from :mod:`vpscli.export.instances`: a keyframe on every frame with the
polyp, then an ``outside="1"`` keyframe (repeating the last mask, as CVAT requires a shape)
on the next exported frame — or the next source frame — after the episode. An episode that
lasts to the last source frame has no outside keyframe (there is no frame after it).
Frames without a mask file are not keyframes: CVAT holds the previous keyframe over them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

from vpscli.export.cvat_rle import encode_cvat_rle
from vpscli.export.instances import FrameInstances, Instance
from vpscli.io.atomic import write_bytes_atomic

XML_NAME = "annotations.xml"
LABEL_COLOUR = "#800000"


def _mask_element(track: ET.Element, inst: Instance, frame: int, outside: bool) -> None:
    rle = encode_cvat_rle(inst.mask)
    ET.SubElement(
        track,
        "mask",
        {
            "frame": str(frame),
            "keyframe": "1",
            "outside": "1" if outside else "0",
            "occluded": "0",
            "rle": rle.rle_text,
            "left": str(rle.left),
            "top": str(rle.top),
            "width": str(rle.width),
            "height": str(rle.height),
            "z_order": "0",
        },
    )


def _meta(root: ET.Element, name: str, frame_count: int, width: int, height: int, label: str) -> None:
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    for key, value in (
        ("id", "0"),
        ("name", name),
        ("size", str(frame_count)),
        ("mode", "interpolation"),
        ("overlap", "0"),
        ("bugtracker", ""),
        ("flipped", "False"),
        ("start_frame", "0"),
        ("stop_frame", str(max(frame_count - 1, 0))),
        ("frame_filter", ""),
    ):
        ET.SubElement(task, key).text = value
    labels = ET.SubElement(ET.SubElement(task, "labels"), "label")
    ET.SubElement(labels, "name").text = label
    ET.SubElement(labels, "color").text = LABEL_COLOUR
    ET.SubElement(labels, "type").text = "mask"
    ET.SubElement(labels, "attributes")
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)


def write_cvat_video(
    frames: Iterable[FrameInstances],
    out: Path,
    name: str,
    frame_count: int,
    width: int,
    height: int,
    label: str = "polyp",
) -> Path:
    """Write ``OUT/annotations.xml``; returns its path.

    Memory holds the masks of open episodes' last frames plus each track's RLE text.
    """
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    _meta(root, name, frame_count, width, height, label)
    tracks: dict[int, ET.Element] = {}
    open_last: dict[int, Instance] = {}  # track id → its latest instance, while the episode lasts
    for frame in frames:
        present = {inst.track_id for inst in frame.instances}
        for tid in [t for t in open_last if t not in present]:
            _mask_element(tracks[tid], open_last.pop(tid), frame.index, outside=True)
        for inst in frame.instances:
            if inst.track_id not in tracks:
                tracks[inst.track_id] = ET.SubElement(
                    root, "track", {"id": str(inst.track_id), "label": label, "source": "auto"}
                )
            _mask_element(tracks[inst.track_id], inst, frame.index, outside=False)
            open_last[inst.track_id] = inst
    for tid, inst in open_last.items():
        if inst.frame + 1 < frame_count:
            _mask_element(tracks[tid], inst, inst.frame + 1, outside=True)
    ET.indent(root, space="  ")
    data = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
    return write_bytes_atomic(out / XML_NAME, data)
