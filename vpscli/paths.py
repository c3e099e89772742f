"""Where vps finds its bundled weights and the shared public data, and keeps its cache.

- Weights: ``$VPS_WEIGHTS`` if set, else the ``weights/`` folder beside the package
  (the repository layout).
- Data: ``$VPS_DATA`` if set, else ``../shared/data`` beside the repository.
- Cache (decoded training data): ``$VPS_CACHE``, else ``~/.cache/vps`` (XDG).
Nothing is ever downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def weights_dir() -> Path:
    env = os.environ.get("VPS_WEIGHTS")
    return Path(env).expanduser() if env else REPO_DIR / "weights"


def data_dir() -> Path:
    """The public data folder (may not exist: callers check and skip or report)."""
    env = os.environ.get("VPS_DATA")
    return Path(env).expanduser() if env else (REPO_DIR.parent / "shared" / "data")


def cache_dir() -> Path:
    """Where vps keeps data it can rebuild (the decoded training data): ``$VPS_CACHE``, else
    ``$XDG_CACHE_HOME/vps``, else ``~/.cache/vps``. Deleting it only costs the time to rebuild."""
    env = os.environ.get("VPS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vps"
