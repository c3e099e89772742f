"""Bundled weights: ``weights/manifest.json`` and sha256 verification.

The manifest lists every checkpoint vps ships::

    {"format": 1, "weights": [{"file": "aen-cffm.safetensors", "model": "aen-cffm",
      "sha256": "...", "input_size": [320, 448], ...}]}

Nothing is ever downloaded: a checkpoint is usable only if it is in the folder and its
sha256 matches the manifest. This module stays free of torch so that ``vps doctor`` is
instant; loading and importing weights live in :mod:`vpscli.models.weights`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from vpscli.errors import InputError
from vpscli.paths import weights_dir

MANIFEST_NAME = "manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class WeightsEntry:
    """One manifest entry and what verification found."""

    file: str
    model: str
    sha256: str
    info: dict
    path: Path
    present: bool
    verified: bool

    def to_json(self) -> dict:
        return {"file": self.file, "model": self.model, "sha256": self.sha256, "present": self.present,
                "verified": self.verified, **{k: v for k, v in self.info.items() if k not in ("file", "model", "sha256")}}


def read_manifest(folder: str | Path | None = None) -> list[dict]:
    """The manifest's entries (empty when there is no manifest)."""
    folder = Path(folder) if folder is not None else weights_dir()
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        entries = data["weights"]
        for e in entries:
            e["file"], e["model"], e["sha256"]  # noqa: B018 - required keys
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"malformed weights manifest ({e})", path=path,
                         fix="restore weights/manifest.json from the repository") from None
    return entries


def verify_checksums(folder: str | Path | None = None) -> list[WeightsEntry]:
    """Check every manifest entry without importing torch: is the file there, does its sha256 match.

    (``vpscli.models.weights.verify_weights`` also loads each file into its model.)
    """
    folder = Path(folder) if folder is not None else weights_dir()
    result = []
    for e in read_manifest(folder):
        path = folder / e["file"]
        present = path.is_file()
        verified = present and sha256_file(path) == e["sha256"].lower()
        result.append(WeightsEntry(e["file"], e["model"], e["sha256"], e, path, present, verified))
    return result
