"""COCO 1.0 instances JSON with RLE masks, as CVAT's COCO importer and pycocotools read it.

``OUT/annotations/instances_default.json``::

    {"info": {...}, "licenses": [], "categories": [{"id": 1, "name": "polyp", "supercategory": ""}],
     "images": [{"id": 1, "file_name": "frame_000000.jpg", "width": W, "height": H, "frame_index": 0}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
                      "segmentation": {"size": [H, W], "counts": [...]},   # column-major RLE
                      "area": A, "bbox": [x, y, w, h], "score": s,
                      "attributes": {"track_id": t, "score": s, "occluded": false}}, ...]}

One annotation per frame-instance (connected component), so disconnected polyps are never one
mask (CVAT #7458). Every exported frame is an image, with or without annotations. ``score`` is
left out when unknown. ``--include-frames`` writes ``OUT/images/frame_XXXXXX.jpg``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from vpscli.export.coco_rle import encode_coco_rle
from vpscli.export.instances import FrameInstances
from vpscli.io.atomic import write_bytes_atomic

JSON_PATH = Path("annotations") / "instances_default.json"


def write_coco(
    frames: Iterable[FrameInstances],
    out: Path,
    width: int,
    height: int,
    label: str = "polyp",
    description: str = "vps export",
) -> Path:
    """Write ``OUT/annotations/instances_default.json``; returns its path."""
    images, annotations = [], []
    for frame in frames:
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": f"frame_{frame.index:06d}.jpg",
                "width": width,
                "height": height,
                "frame_index": frame.index,
                "license": 0,
                "flickr_url": "",
                "coco_url": "",
                "date_captured": 0,
            }
        )
        for inst in frame.instances:
            attributes = {"occluded": False, "track_id": inst.track_id, "keyframe": True}
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "segmentation": encode_coco_rle(inst.mask),
                "area": float(inst.area),
                "bbox": [float(v) for v in inst.bbox],
                "iscrowd": 1,
            }
            if inst.score is not None:
                annotation["score"] = inst.score
                attributes["score"] = inst.score
            annotation["attributes"] = attributes
            annotations.append(annotation)
    document = {
        "info": {
            "description": description,
            "contributor": "vps",
            "version": "1.0",
            "url": "",
            "year": "",
            "date_created": "",
        },
        "licenses": [{"id": 0, "name": "", "url": ""}],
        "categories": [{"id": 1, "name": label, "supercategory": ""}],
        "images": images,
        "annotations": annotations,
    }
    return write_bytes_atomic(out / JSON_PATH, json.dumps(document, separators=(",", ":")).encode())
