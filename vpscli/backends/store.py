"""The disk cache of converted graphs: convert once, load in a second on every later run.

An entry is a folder ``<cache>/graphs/<model>-<backend>-<precision>-<key>/`` holding the runtime's files
and ``entry.json``: what the entry was built from (the key's fields) and each file's sha256. The key
covers everything the files depend on — the weights' sha256, the model, backbone, input size and clip
length, the runtime and its version, the precision (and the int8 calibration frames), the graph format
and vps's version — so a changed input is a new entry, never a stale one. An entry is trusted only when
its record matches and every file's sha256 does; a damaged one is removed and built again. Entries are
built in a staging folder and renamed into place, so an interrupted build leaves nothing behind, and two
processes building the same entry both end with a complete one.

Entries that this installation will never load again (made by another vps, another version of their
runtime or an older graph format) stay on disk until removed: :func:`scan_cache` lists every entry with
its size, last use and, for those, why (``vps weights cache``), :func:`remove_entries` deletes them
(``vps weights cache --prune``). Loading an entry marks its last use (the record's modification time).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from vpscli.errors import InputError
from vpscli.versions import version_of

if TYPE_CHECKING:
    from vpscli.backends.graphs import StepGraph

__all__ = [
    "GRAPH_FORMAT",
    "cache_root",
    "entry_fields",
    "GraphEntry",
    "open_entry",
    "CachedEntry",
    "installed_versions",
    "stale_reason",
    "scan_cache",
    "remove_entries",
    "stale_note",
    "converted_models",
    "format_bytes",
    "conversion_error",
]

#: the graphs' own version: raised whenever an exported graph computes something new (its graphs or the
#: modules they trace: 2 gathers the NS blocks' window taps, 3 ends at the models' output stride, 4 gathers
#: the CFFM attention's keys, 5 gathers the NS taps of every key frame in one row)
GRAPH_FORMAT = 5
_RECORD = "entry.json"
_STAGING = ".staging-"
#: a staging folder untouched this long was left by a conversion that was killed (a running one finishes
#: within minutes): it is removed with the stale entries; a younger one may be a conversion in progress
STAGING_EXPIRY_S = 24 * 3600


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

    def mark_used(self) -> None:
        """Record this load as the entry's last use (the record's modification time); a cache that
        cannot be written (a read-only mount) is still read."""
        try:
            os.utime(self.folder / _RECORD)
        except OSError:
            pass

    def build(self, write: Callable[[Path], list[str]]) -> None:
        """Write a fresh entry: ``write(staging)`` creates the files and returns their names."""
        root = self.folder.parent
        staging = root / f"{_STAGING}{self.folder.name}-{uuid.uuid4().hex[:8]}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
        except OSError as e:
            raise InputError(
                f"the graph cache cannot be written ({e.strerror})",
                path=root,
                fix="pass --cache-dir a writable folder (or set VPS_CACHE)",
            ) from None
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
        entry.mark_used()
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


# -- what the cache holds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedEntry:
    """A folder found in ``<cache>/graphs/``.

    Attributes:
        folder: the entry's folder.
        fields: its record's key fields; ``None`` when it has no readable record.
        size: bytes on disk, OpenVINO's compiled forms included.
        last_used: when a run last loaded it (or it was converted), seconds since the epoch.
        stale: why this installation will never load it; ``None`` when it may.
    """

    folder: Path
    fields: dict | None
    size: int
    last_used: float
    stale: str | None


def installed_versions() -> dict[str, str | None]:
    """What an entry's key is compared with: vps's version and each runtime's (``None``: not installed;
    ``unknown``: importable without a version, as :meth:`~vpscli.backends.runtimes.Runtime.require` says)."""
    from vpscli import __version__

    versions: dict[str, str | None] = {"vps": __version__}
    for package in ("openvino", "onnxruntime", "nncf"):
        found = importlib.util.find_spec(package) is not None
        versions[package] = (version_of(package) or "unknown") if found else None
    return versions


def stale_reason(fields: Mapping | None, installed: Mapping[str, str | None]) -> str | None:
    """Why an entry with these key fields can never be loaded by an installation with these versions
    (:func:`installed_versions`), or ``None``: its graph format, vps version, runtime version (and for
    int8 the NNCF version) are what this installation would write into a new key."""
    if fields is None:
        return "no readable entry.json"
    if fields.get("graph_format") != GRAPH_FORMAT:
        return f"graph format {fields.get('graph_format')} (this vps makes {GRAPH_FORMAT})"
    if fields.get("vps") != installed.get("vps"):
        return f"made by vps {fields.get('vps')} (this is {installed.get('vps')})"
    made_by = [(str(fields.get("backend")), fields.get("backend_version"))]
    if "nncf" in fields:  # int8 entries: NNCF quantised them
        made_by.append(("nncf", fields["nncf"]))
    for package, version in made_by:
        now = installed.get(package)
        if now is None:
            return f"{package} is not installed"
        if version != now:
            return f"made by {package} {version} (installed: {now})"
    return None


def _disk_size(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(base) / name).stat().st_size
            except OSError:
                pass
    return total


def _read_fields(folder: Path) -> tuple[dict | None, float]:
    """The record's fields (``None``: none readable) and its modification time (else the folder's)."""
    record = folder / _RECORD
    try:
        fields = json.loads(record.read_text()).get("fields")
        return (fields if isinstance(fields, dict) else None), record.stat().st_mtime
    except (OSError, ValueError, AttributeError):
        try:
            return None, folder.stat().st_mtime
        except OSError:
            return None, 0.0


def scan_cache(root: Path, installed: Mapping[str, str | None] | None = None) -> list[CachedEntry]:
    """Every entry under ``root/graphs`` (oldest use first), each with its size and staleness; staging
    folders left by a conversion killed more than :data:`STAGING_EXPIRY_S` ago count as stale, younger ones
    are left out (a conversion may be writing them). The files' sha256 are not checked here: a damaged
    entry that is otherwise current is converted again when a run needs it."""
    installed = installed_versions() if installed is None else installed
    graphs = root / "graphs"
    if not graphs.is_dir():
        return []
    found = []
    for folder in graphs.iterdir():
        if not folder.is_dir():
            continue
        fields, used = _read_fields(folder)
        if folder.name.startswith(_STAGING):
            if time.time() - used < STAGING_EXPIRY_S:
                continue
            reason: str | None = "left by an interrupted conversion"
        else:
            reason = stale_reason(fields, installed)
        found.append(CachedEntry(folder, fields, _disk_size(folder), used, reason))
    return sorted(found, key=lambda e: (e.last_used, e.folder.name))


def remove_entries(entries: Iterable[CachedEntry]) -> int:
    """Delete these entries' folders; returns the bytes freed. An entry removed while a run loads it is
    converted again by that run (it is trusted only when every file hashes as recorded)."""
    freed = removed = 0
    for entry in entries:
        try:
            shutil.rmtree(entry.folder)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise InputError(
                f"the converted model cannot be removed ({e.strerror}); "
                f"{removed} removed before it ({format_bytes(freed)})",
                path=entry.folder,
                fix="check the cache folder's permissions, or delete it by hand",
            ) from None
        freed += entry.size
        removed += 1
    return freed


def stale_note(root: Path) -> str:
    """What a conversion's note adds when the cache holds entries this installation will never load (after
    an upgrade, the moment a user meets the cache): ``""`` when it holds none."""
    stale = [e for e in scan_cache(root) if e.stale]
    if not stale:
        return ""
    n = len(stale)
    return (
        f"; {converted_models(n, 'older ')} ({format_bytes(sum(e.size for e in stale))}) in the "
        f"cache will never be loaded again: vps weights cache --prune removes {'them' if n != 1 else 'it'}"
    )


def converted_models(n: int, kind: str = "") -> str:
    """``1 converted model``, ``16 older converted models``: a count of entries as the messages say it."""
    return f"{n} {kind}converted model{'s' * (n != 1)}"


def format_bytes(n: int) -> str:
    """``812 KiB``, ``25 MiB``, ``1.2 GiB``: a size on disk for a person to read."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


#: free space under which a failed conversion is put down to the cache's disk (an entry takes 6–170 MB)
LOW_DISK_BYTES = 256 * 2**20


def conversion_error(e: Exception, what: str, root: Path) -> InputError:
    """A failed conversion as one line: a full disk (OpenVINO reports one as an iostream error) names the
    cache's free space and how to make room; anything else asks for a report."""
    try:
        free: int | None = shutil.disk_usage(root).free
    except OSError:
        free = None
    full = isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)
    if full or (free is not None and free < LOW_DISK_BYTES):
        return InputError(
            f"{what}: too little room in the cache ({format_bytes(free) if free is not None else 'none'} free)",
            path=root,
            fix="make room there (vps weights cache --prune removes converted models this installation will "
            "never load again) or pass --cache-dir a folder on another disk",
        )
    first_line = (str(e).splitlines() or [""])[0][:200]
    return InputError(
        f"{what} ({type(e).__name__}: {first_line})",
        fix="use --backend torch, and report the model and this message",
    )
