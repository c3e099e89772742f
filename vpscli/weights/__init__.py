"""Model weights: the manifest of what vps ships (torch-free, :mod:`.manifest`), the store that
verifies and loads weights into models (:mod:`.store`) and the importer that adds weights to the folder
(:mod:`.importer`); these two import torch when used.

Example: ``from vpscli.weights import load_model; loaded = load_model("pns-plus")``.
"""

from __future__ import annotations

from vpscli.weights.manifest import (
    MANIFEST_NAME,
    ChecksumCheck,
    WeightsEntry,
    bundled_entries,
    default_model,
    find_entry,
    format_size,
    read_manifest,
    sha256_file,
    verify_checksums,
)

__all__ = [
    "MANIFEST_NAME",
    "ChecksumCheck",
    "WeightsEntry",
    "bundled_entries",
    "default_model",
    "find_entry",
    "format_size",
    "read_manifest",
    "sha256_file",
    "verify_checksums",
    "LoadedModel",
    "load_model",
    "choose_model",
    "import_weights",
    "verify_weights",
    "read_metadata",
]

_STORE = {"LoadedModel", "load_model", "choose_model", "verify_weights", "read_metadata"}


def __getattr__(name: str):
    # the store and the importer import torch: only when one of their names is used, so `vps doctor`
    # stays instant
    if name in _STORE:
        from vpscli.weights import store

        return getattr(store, name)
    if name == "import_weights":
        from vpscli.weights.importer import import_weights

        return import_weights
    raise AttributeError(f"module 'vpscli.weights' has no attribute {name!r}")
