"""``vps export``: hand vps masks to annotation tools so annotators correct instead of draw.

One module per concept:

- :mod:`.mask_sequence` — the input: a mask folder (``vps segment`` output or any folder),
  its frame indices, size, model/confidence metadata, and checks against ``--video``.
- :mod:`.instances` — per-frame connected components and their linking into tracks
  (polyp episodes).
- :mod:`.coco_rle`, :mod:`.cvat_rle`, :mod:`.labelstudio_rle` — the three run-length encodings.
- :mod:`.cvat_mask`, :mod:`.cvat_video`, :mod:`.coco`, :mod:`.labelstudio`, :mod:`.davis` —
  one writer per format.
- :mod:`.source_frames` — ``--include-frames``: decoded source frames named to match.
- :mod:`.runner` — :func:`~vpscli.export.runner.export_masks`, what the CLI calls.
"""

from __future__ import annotations

#: export formats, in the order the CLI lists them
FORMATS = ("cvat-mask", "cvat-video", "coco", "labelstudio", "davis")
