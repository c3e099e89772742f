"""Where vps finds its bundled weights and the shared public data, and keeps its cache.

- Weights: ``$VPS_WEIGHTS`` if set, else the bundled weights: the installed package
  ``vps_weights`` (the repository's ``weights/`` folder, shipped in every wheel).
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
    return Path(env).expanduser() if env else bundled_weights_dir()


def bundled_weights_dir() -> Path:
    """The weights that ship with vps: the ``vps_weights`` package wherever it is installed (a wheel's
    site-packages, or the repository's ``weights/`` in an editable install); the repository folder when
    vps runs from a source tree without installing."""
    from importlib.util import find_spec

    spec = find_spec("vps_weights")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return REPO_DIR / "weights"


def data_dir() -> Path:
    """The public data folder (may not exist: callers check and skip or report)."""
    env = os.environ.get("VPS_DATA")
    return Path(env).expanduser() if env else (REPO_DIR.parent / "shared" / "data")


def cache_dir() -> Path:
    """Where vps keeps data it can rebuild (the decoded training data, converted models): ``$VPS_CACHE``, else
    ``$XDG_CACHE_HOME/vps``, else ``~/.cache/vps``. Deleting it only costs the time to rebuild."""
    env = os.environ.get("VPS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vps"
