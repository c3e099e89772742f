"""The weights folder's ``manifest.json``: what vps ships, checked without importing torch.

The folder is :func:`vpscli.paths.weights_dir` (``$VPS_WEIGHTS`` or the repository's ``weights/``)::

    {"default": "pns-plus-lite2.safetensors",
     "weights": [{"file": "pns-plus-lite2.safetensors", "model": "pns-plus", "backbone": "efficientnet-lite2",
                  "sha256": "…", "dtype": "float16", "input_size": [160, 224], "training_data": "…",
                  "metrics": {…}, "recipe": "…", "source": "…", "legacy_norm": false, "note": "…"}]}

``default`` names the weights ``vps segment`` runs when no model is named: an explicit choice
(``vps weights default FILE``), made on validation figures; importing weights never changes it.

``input_size`` is ``[H, W]`` (as tensor shapes); an entry without ``backbone`` predates the
backbone choice (``res2net50``). Nothing is ever downloaded: a checkpoint is usable only if it
is in the folder and its sha256 matches its entry.

This module stays free of torch so that ``vps doctor`` is instant; importing, verifying and
loading weights into models lives in :mod:`vpscli.weights.store`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from vpscli.errors import InputError
from vpscli.zoo_file import model_names

MANIFEST_NAME = "manifest.json"

#: The backbone of weights that do not record one (every checkpoint written before the choice).
UNRECORDED_BACKBONE = "res2net50"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_or_default(folder: str | Path | None) -> Path:
    """``folder``, or the weights folder vps uses (``$VPS_WEIGHTS`` or ``weights/``)."""
    if folder is not None:
        return Path(folder)
    from vpscli.paths import weights_dir

    return weights_dir()


@dataclass(frozen=True)
class WeightsEntry:
    """One manifest entry: a weights file of the folder and its record (model card).

    Example: ``entry = find_entry("pns-plus"); entry.path, entry.input_size, entry.record["metrics"]``.

    Attributes:
        file: the file name inside ``folder``.
        model: the architecture (registry name).
        sha256: the file's checksum as registered.
        backbone: ``res2net50`` or ``efficientnet-lite2``.
        input_size: ``(H, W)`` the weights were trained at, ``None`` when not recorded (native size).
        record: every field of the entry as written in ``manifest.json``.
        folder: the weights folder holding the file.
    """

    file: str
    model: str
    sha256: str
    backbone: str = UNRECORDED_BACKBONE
    input_size: tuple[int, int] | None = None
    record: dict = field(default_factory=dict, compare=False, repr=False)
    folder: Path = field(default=Path("."), compare=False)

    @classmethod
    def from_json(cls, data: dict, folder: Path) -> "WeightsEntry":
        size = data.get("input_size")
        return cls(
            file=str(data["file"]),
            model=str(data["model"]),
            sha256=str(data["sha256"]).lower(),
            backbone=str(data.get("backbone") or UNRECORDED_BACKBONE),
            input_size=(int(size[0]), int(size[1])) if size else None,
            record=dict(data),
            folder=folder,
        )

    def to_json(self) -> dict:
        """The entry as ``manifest.json`` holds it."""
        return dict(self.record)

    @property
    def path(self) -> Path:
        return self.folder / self.file

    @property
    def present(self) -> bool:
        return self.path.is_file()

    @property
    def note(self) -> str:
        return str(self.record.get("note") or "")

    @property
    def presence(self) -> float | None:
        """The frame-decision level calibrated for these weights (their model card's ``presence``): a frame
        counts as showing a polyp when its peak probability reaches it. ``None`` when the card has none."""
        level = self.record.get("presence")
        if level is None:
            return None
        try:
            level = float(level)
        except (TypeError, ValueError):
            level = float("nan")
        if not 0.0 < level <= 1.0:  # nan included
            raise InputError(
                f"malformed weights manifest: {self.file}'s presence level {self.record.get('presence')!r} "
                "is not a probability",
                path=self.folder / MANIFEST_NAME,
                fix="restore weights/manifest.json from the repository",
            )
        return level

    def matches_file(self) -> bool:
        """The file is there and its sha256 is the registered one (reads the whole file)."""
        return self.present and sha256_file(self.path) == self.sha256


def read_manifest(folder: str | Path | None = None) -> list[WeightsEntry]:
    """The manifest's entries, in order (empty when there is no manifest).

    Raises:
        InputError: a malformed manifest (named, with the fix).
    """
    folder = folder_or_default(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        return [WeightsEntry.from_json(e, folder) for e in json.loads(path.read_text())["weights"]]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise InputError(
            f"malformed weights manifest ({e})",
            path=path,
            fix="restore weights/manifest.json from the repository",
        ) from None


def read_default(folder: str | Path | None = None) -> str | None:
    """The file the manifest names as the default weights (``None``: it names none)."""
    path = folder_or_default(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text()).get("default")
    except (ValueError, AttributeError) as e:
        raise InputError(
            f"malformed weights manifest ({e})",
            path=path,
            fix="restore weights/manifest.json from the repository",
        ) from None
    return str(value) if value else None


_KEEP = object()


def write_manifest(folder: Path, entries: list[WeightsEntry], default=_KEEP) -> None:
    """Write ``manifest.json`` with ``entries``; ``default``: the default file (kept as it is unless given)."""
    from vpscli.io.atomic import write_text_atomic

    default = read_default(folder) if default is _KEEP else default
    head = {"default": default} if default else {}

    write_text_atomic(
        folder / MANIFEST_NAME,
        json.dumps({**head, "weights": [e.to_json() for e in entries]}, indent=2) + "\n",
    )


def bundled_entries(folder: str | Path | None = None) -> list[WeightsEntry]:
    """Manifest entries whose file is present (not yet checked against its sha256)."""
    return [e for e in read_manifest(folder) if e.present]


def bundled_card(sha256: str, folder: str | Path | None = None) -> WeightsEntry | None:
    """The present entry whose file has this sha256: a bundled file named by its path (or copied elsewhere)
    keeps its model card — validation figures and precisions."""
    return next((e for e in bundled_entries(folder) if e.sha256 == sha256), None)


def default_entry(folder: str | Path | None = None) -> WeightsEntry | None:
    """The present entry the manifest names as its ``default`` (``None`` when it names none)."""
    name = read_default(folder)
    return next((e for e in bundled_entries(folder) if e.file == name), None) if name else None


def find_entry(
    model: str, folder: str | Path | None = None, backbone: str | None = None
) -> WeightsEntry | None:
    """The weights ``--model model`` runs: the manifest's default when it is of ``model`` (on ``backbone``, or
    any when ``None``), else the last-registered present entry for it."""
    chosen = default_entry(folder)
    if chosen is not None and chosen.model == model and backbone in (None, chosen.backbone):
        return chosen
    matches = [e for e in bundled_entries(folder) if e.model == model and backbone in (None, e.backbone)]
    return matches[-1] if matches else None


def default_model(folder: str | Path | None = None) -> str:
    """The model ``vps segment`` uses when none is named: that of the manifest's ``default`` weights, else
    the first model in the registry's order of preference (:func:`vpscli.zoo_file.model_names`) with
    weights in the folder (the first of all when none has any — loading then says what to do)."""
    chosen = default_entry(folder)
    if chosen is not None:
        return chosen.model
    bundled = {e.model for e in bundled_entries(folder)}
    preference = model_names()
    return next((m for m in preference if m in bundled), preference[0])


class ChecksumCheck(NamedTuple):
    """What :func:`verify_checksums` found for one entry."""

    entry: WeightsEntry
    present: bool
    verified: bool

    def to_json(self) -> dict:
        return {
            "file": self.entry.file,
            "model": self.entry.model,
            "sha256": self.entry.sha256,
            "present": self.present,
            "verified": self.verified,
            **{k: v for k, v in self.entry.record.items() if k not in ("file", "model", "sha256")},
        }


def verify_checksums(folder: str | Path | None = None) -> list[ChecksumCheck]:
    """Check every entry without importing torch: is the file there, does its sha256 match.

    (:func:`vpscli.weights.store.verify_weights` also loads each file into its model.)
    """
    return [ChecksumCheck(e, e.present, e.matches_file()) for e in read_manifest(folder)]


def format_size(hw) -> str:
    """``(H, W)`` as vps writes sizes for people and ``--size``: width × height (``448×256``)."""
    return f"{int(hw[1])}×{int(hw[0])}"
