"""The disk cache of converted graphs: convert once, load in a second on every later run.

An entry is a folder ``<cache>/graphs/<model>-<backend>-<precision>-<key>/`` holding the runtime's files
and ``entry.json``: what the entry was built from (the key's fields) and each file's sha256. The key
covers everything the files depend on — the weights' sha256, the model, backbone, input size and clip
length, the runtime and its version, the precision (and the int8 calibration frames), the graph format
and vps's version — so a changed input is a new entry, never a stale one. An entry is trusted only when
its record matches and every file's sha256 does; a damaged one is removed and built again. Entries are
built in a staging folder and renamed into place, so an interrupted build leaves nothing behind, and two
processes building the same entry both end with a complete one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Callable

from vpscli.backends.graphs import StepGraph
from vpscli.errors import InputError

__all__ = ["GRAPH_FORMAT", "cache_root", "entry_fields", "GraphEntry", "open_entry"]

#: the graphs' own version: raised whenever an exported graph computes something new (its graphs or the
#: modules they trace: 2 gathers the NS blocks' window taps, 3 ends at the models' output stride, 4 gathers
#: the CFFM attention's keys, 5 gathers the NS taps of every key frame in one row)
GRAPH_FORMAT = 5
_RECORD = "entry.json"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else vps's cache folder (:func:`vpscli.paths.cache_dir`: ``$VPS_CACHE``, else
    ``~/.cache/vps``)."""
    from vpscli.paths import cache_dir as default_cache

    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry_fields(**fields) -> dict:
    """The key's fields (JSON values), with the graph format and vps's version added."""
    from vpscli import __version__

    return {"graph_format": GRAPH_FORMAT, "vps": __version__, **fields}


class GraphEntry:
    """One cache entry: its folder and the record it must carry."""

    def __init__(self, root: Path, fields: dict):
        self.fields = fields
        blob = json.dumps(fields, sort_keys=True).encode()
        key = hashlib.sha256(blob).hexdigest()[:20]
        name = (
            f"{fields.get('model', 'model')}-{fields.get('backend', 'x')}-{fields.get('precision', 'fp32')}"
        )
        self.folder = root / "graphs" / f"{name}-{key}"

    def valid(self) -> bool:
        """The folder holds a complete entry for these fields, every file as written."""
        try:
            record = json.loads((self.folder / _RECORD).read_text())
            if record.get("fields") != self.fields:
                return False
            files = record.get("files") or {}
            return bool(files) and all(_sha256(self.folder / n) == s for n, s in files.items())
        except (OSError, ValueError, TypeError, AttributeError):
            return False

    def build(self, write: Callable[[Path], list[str]]) -> None:
        """Write a fresh entry: ``write(staging)`` creates the files and returns their names."""
        root = self.folder.parent
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(
                f"the graph cache cannot be created ({e.strerror})",
                path=root,
                fix="pass --cache-dir a writable folder (or set VPS_CACHE)",
            ) from None
        staging = root / f".staging-{self.folder.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            with warnings.catch_warnings():
                # the graphs are traced at one fixed size on purpose: the tracer's notes about
                # shape-dependent Python values are expected
                warnings.simplefilter("ignore")
                names = write(staging)
            record = {"fields": self.fields, "files": {n: _sha256(staging / n) for n in names}}
            (staging / _RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
            if self.folder.exists():
                shutil.rmtree(self.folder, ignore_errors=True)  # damaged or stale: rebuilt, never trusted
            try:
                staging.rename(self.folder)
            except OSError:
                if not self.valid():  # another process did not finish one either
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def open_entry(
    root: Path,
    fields: dict,
    graphs: tuple[StepGraph, ...],
    convert: Callable[[StepGraph, Path], list[str]],
    before_build: Callable[[Path], None] | None = None,
) -> tuple[GraphEntry, bool]:
    """The entry for ``fields``, converted now unless a valid one is cached: ``(entry, built)``;
    ``before_build(folder)`` is called first when it is built (a conversion takes seconds)."""
    entry = GraphEntry(root, fields)
    if entry.valid():
        return entry, False
    if before_build is not None:
        before_build(entry.folder)

    def write(folder: Path) -> list[str]:
        names: list[str] = []
        for g in graphs:
            names += convert(g, folder)
        return names

    entry.build(write)
    return entry, True
