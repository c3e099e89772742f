"""Label Studio pre-annotations: one image task per frame with brush-mask predictions.

``OUT/tasks.json`` (import in the Data Manager) — a list of::

    {"data": {"image": "images/frame_000012.jpg", "video": "<video>", "frame_index": 12},
     "predictions": [{"model_version": "vps/<model>@<sha256[:12]>", "score": 0.93,
                      "result": [{"id": "f12_0", "from_name": "tag", "to_name": "image",
                                  "type": "brushlabels", "origin": "prediction",
                                  "original_width": W, "original_height": H, "image_rotation": 0,
                                  "score": 0.93, "value": {"format": "rle", "rle": [...],
                                  "brushlabels": ["polyp"]}}, ...]}]}

One result per instance (:mod:`vpscli.export.labelstudio_rle`). Frames without a polyp keep
their task with an empty ``result`` so reviewers see every frame; ``score`` (frame confidence,
for "review lowest first") is left out when unknown. Label Studio video tasks take boxes only,
hence image tasks. ``data.image`` is relative to ``OUT``: serve ``OUT`` (local-files storage)
or rewrite the prefix. ``OUT/labeling_config.xml`` is the matching labeling interface.
``--include-frames`` writes ``OUT/images/frame_XXXXXX.jpg``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from vpscli.export.instances import FrameInstances
from vpscli.export.labelstudio_rle import encode_labelstudio_rle
from vpscli.io.atomic import write_bytes_atomic

TASKS_NAME = "tasks.json"
CONFIG_NAME = "labeling_config.xml"
FROM_NAME, TO_NAME = "tag", "image"


def model_version(model: str | None, weights_sha256: str | None) -> str:
    """``vps/<model>@<first 12 hex digits of the weights sha256>`` (parts left out when unknown)."""
    text = f"vps/{model or 'unknown'}"
    return f"{text}@{weights_sha256[:12]}" if weights_sha256 else text


def labeling_config(label: str) -> str:
    return (
        f'<View>\n  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        f'  <BrushLabels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f'    <Label value="{label}" background="#800000"/>\n  </BrushLabels>\n</View>\n'
    )


def write_labelstudio(
    frames: Iterable[FrameInstances],
    out: Path,
    video: str,
    width: int,
    height: int,
    version: str,
    label: str = "polyp",
) -> Path:
    """Write ``OUT/tasks.json`` and ``OUT/labeling_config.xml``; returns the tasks path."""
    tasks = []
    for frame in frames:
        results = []
        for k, inst in enumerate(frame.instances):
            result = {
                "id": f"f{frame.index}_{k}",
                "from_name": FROM_NAME,
                "to_name": TO_NAME,
                "type": "brushlabels",
                "origin": "prediction",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": {"format": "rle", "rle": encode_labelstudio_rle(inst.mask), "brushlabels": [label]},
            }
            if inst.score is not None:
                result["score"] = inst.score
            results.append(result)
        prediction = {"model_version": version, "result": results}
        if frame.confidence is not None:
            prediction["score"] = frame.confidence
        tasks.append(
            {
                "data": {
                    "image": f"images/frame_{frame.index:06d}.jpg",
                    "video": video,
                    "frame_index": frame.index,
                },
                "predictions": [prediction],
            }
        )
    write_bytes_atomic(out / CONFIG_NAME, labeling_config(label).encode())
    return write_bytes_atomic(out / TASKS_NAME, json.dumps(tasks, separators=(",", ":")).encode())
