"""The model zoo, in pure PyTorch: AEN+CFFM (default), CFFM, PNS+, AEN+PNS+, PNS-Net.

Public API (the driver needs nothing else):

- :func:`build_model`, :func:`available_models`, :func:`get_spec` — the registry; a model is an
  architecture on a backbone (``build_model("aen-cffm", backbone="efficientnet-lite2")``,
  :mod:`vpscli.models.backbone`; ImageNet initialisation in :mod:`vpscli.models.pretrained`);
- :class:`ModelSpec`, :class:`VideoState`, :class:`VideoModel` — the window contract
  (see :mod:`vpscli.models.base` for the rules and a usage example);
- :func:`load_checkpoint`, :func:`save_checkpoint` — weights (safetensors, official ``.pth``);
- :func:`describe_models` — parameters, GFLOPs, window, input size, bundled weights.
"""

from vpscli.models.base import ModelSpec, VideoModel, VideoState
from vpscli.models.checkpoint import LoadReport, load_checkpoint, save_checkpoint
from vpscli.models.registry import (
    DEFAULT_MODEL,
    available_models,
    build_model,
    count_parameters,
    describe_models,
    get_spec,
    gflops_per_frame,
)

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "VideoModel",
    "VideoState",
    "LoadReport",
    "available_models",
    "build_model",
    "count_parameters",
    "describe_models",
    "get_spec",
    "gflops_per_frame",
    "load_checkpoint",
    "save_checkpoint",
]
