"""A cheap content fingerprint of a source, so that ``--resume`` never mixes two videos.

Outputs are kept under the source's *name* (``OUT/clip60/``), and two different files can share a
name (``A/clip60.mp4``, ``B/clip60.mp4``; a re-exported video). Before continuing or skipping an
earlier run, ``vps segment --resume`` compares the fingerprint recorded in its ``run.json`` with the
source's.

- video file: its size and the sha256 of its first and last MiB (containers put the index at one
  end and differ throughout; hashing a 2 GB procedure video whole would take seconds per resume);
- frame folder: the number of frames, every file's name and size, and the sha256 of the first and
  last frame files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: bytes hashed at each end of a video file
EDGE_BYTES = 1 << 20


def _edges(path: Path, digest) -> None:
    size = path.stat().st_size
    with path.open("rb") as f:
        digest.update(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(f.read(EDGE_BYTES))


def source_fingerprint(source) -> str:
    """``"<kind>:<size or frame count>:<sha256 hex>"`` of a :mod:`vpscli.io.sources` source."""
    digest = hashlib.sha256()
    files = getattr(source, "files", None)
    if files is not None:  # a frame folder
        for f in files:
            digest.update(f"{f.name}\0{f.stat().st_size}\0".encode())
        for f in files[:1] + files[1:][-1:]:  # first and last (once for a one-frame folder)
            _edges(f, digest)
        return f"frames:{len(files)}:{digest.hexdigest()}"
    path = Path(source.path)
    _edges(path, digest)
    return f"video:{path.stat().st_size}:{digest.hexdigest()}"
