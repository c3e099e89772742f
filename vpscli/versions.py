"""Installed packages' versions, read from their metadata: no package is imported (importing torch or
OpenVINO takes a second), so ``vps doctor`` and the model cache's listing can ask cheaply."""

from __future__ import annotations

import importlib.metadata

__all__ = ["version_of"]


def version_of(package: str) -> str | None:
    """The installed distribution's version (``torch`` → ``2.13.0+cpu``), or ``None`` when it is not
    installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
