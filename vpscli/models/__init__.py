"""The model zoo, in pure PyTorch: video polyp segmentation models, each on a choice of backbones.

Public API (the driver needs nothing else):

- :func:`build_model`, :func:`available_models`, :func:`get_spec` — the registry; a model is an
  architecture on a backbone (``build_model("aen-cffm", backbone="efficientnet-lite2")``,
  :mod:`vpscli.models.backbone`; ImageNet initialisation in :mod:`vpscli.models.pretrained`);
  :func:`available_models` lists the models in the order of preference, the default first;
- :func:`register_model` — how a model module adds its models (:mod:`vpscli.models.registry`);
- :class:`ModelSpec`, :class:`VideoState`, :class:`VideoModel` — the window contract
  (see :mod:`vpscli.models.base` for the rules and a usage example);
- :func:`load_checkpoint`, :func:`save_checkpoint` — weights (safetensors, official ``.pth``);
- :func:`describe_models` — parameters, GFLOPs, window, input size, bundled weights.
"""

# Importing a model module registers its models: one name here per model module.
from vpscli.models import aen, cffm, pns_net, pns_plus  # noqa: F401
from vpscli.models.base import ModelSpec, VideoModel, VideoState
from vpscli.models.checkpoint import LoadReport, load_checkpoint, save_checkpoint
from vpscli.models.registry import (
    available_models,
    build_model,
    count_parameters,
    describe_models,
    get_spec,
    gflops_per_frame,
    register_model,
)

#: the model ``build_model`` and ``vps train`` default to: the first in the order of preference
#: (``vps segment`` runs the best with bundled weights: :func:`vpscli.weights.default_model`)
DEFAULT_MODEL = available_models()[0]

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
    "register_model",
    "save_checkpoint",
]
