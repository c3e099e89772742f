"""vps: video polyp segmentation for colonoscopy videos.

The package is importable without the CLI: ``vpscli.io`` (video and mask I/O),
``vpscli.synth`` (synthetic clips with exact ground truth), and later the engine,
models and metrics. ``vpscli.cli`` is a thin Typer layer over them.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("vps")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
