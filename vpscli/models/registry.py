"""Model names → specs and builders; parameter and FLOP summaries for ``vps models``.

A model is an architecture (its name) on a backbone (:mod:`vpscli.models.backbone`), the
``backbone`` option of :func:`build_model`; ``res2net50`` when none is named."""

from __future__ import annotations

import json
from typing import Callable

import torch

from vpscli.errors import UsageError
from vpscli.models.backbone import DEFAULT_BACKBONE, available_backbones, backbone_info
from vpscli.models.base import ModelSpec, VideoModel
from vpscli.weights.manifest import MODEL_PREFERENCE

__all__ = [
    "DEFAULT_MODEL",
    "available_models",
    "get_spec",
    "build_model",
    "count_parameters",
    "gflops_per_frame",
    "describe_models",
]

#: The model ``vps`` uses when none is named.
#: the architecture ``build_model`` and ``vps train`` default to: the best of the preference order
#: (``vps segment`` uses the best with bundled weights: :func:`vpscli.weights.default_model`)
DEFAULT_MODEL = MODEL_PREFERENCE[0]


def _build_aen_cffm(**kw) -> VideoModel:
    from vpscli.models.aen import AENCFFM

    return AENCFFM(**kw)


def _build_cffm(**kw) -> VideoModel:
    from vpscli.models.cffm import CFFM

    return CFFM(**kw)


def _build_pns_plus(**kw) -> VideoModel:
    from vpscli.models.pns_plus import PNSPlus

    return PNSPlus(**kw)


def _build_aen_pns_plus(**kw) -> VideoModel:
    from vpscli.models.aen import AENPNSPlus

    return AENPNSPlus(**kw)


def _build_pns_net(**kw) -> VideoModel:
    from vpscli.models.pns_net import PNSNet

    return PNSNet(**kw)


_BUILDERS: dict[str, Callable[..., VideoModel]] = {
    "aen-cffm": _build_aen_cffm,
    "cffm": _build_cffm,
    "pns-plus": _build_pns_plus,
    "aen-pns-plus": _build_aen_pns_plus,
    "pns-net": _build_pns_net,
}


def _spec_of(name: str) -> ModelSpec:
    if name == "aen-cffm":
        from vpscli.models.aen import AEN_CFFM_SPEC as spec
    elif name == "cffm":
        from vpscli.models.cffm import CFFM_SPEC as spec
    elif name == "pns-plus":
        from vpscli.models.pns_plus import PNS_PLUS_SPEC as spec
    elif name == "aen-pns-plus":
        from vpscli.models.aen import AEN_PNS_PLUS_SPEC as spec
    else:
        from vpscli.models.pns_net import PNS_NET_SPEC as spec
    return spec


def available_models() -> list[str]:
    """Registered model names, the default first."""
    return list(_BUILDERS)


def _check(name: str) -> str:
    if name not in _BUILDERS:
        raise UsageError(f"unknown model '{name}'", fix="choose one of: " + ", ".join(available_models()))
    return name


def get_spec(name: str, backbone: str = DEFAULT_BACKBONE) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model on ``backbone`` at its native input size.

    Raises:
        UsageError: unknown model or backbone.
    """
    return _spec_of(_check(name)).with_backbone(backbone)


def build_model(name: str = DEFAULT_MODEL, backbone: str = DEFAULT_BACKBONE, **kwargs) -> VideoModel:
    """Build a registered model with fresh (untrained) weights, on the CPU, in train mode.

    Args:
        name: one of :func:`available_models`.
        backbone: one of :func:`~vpscli.models.backbone.available_backbones` (randomly
            initialised; ImageNet weights come from :func:`vpscli.models.pretrained.load_imagenet`).
        **kwargs: model options, e.g. ``input_size=(H, W)`` (every model). Weights are loaded
            separately with :func:`vpscli.models.load_checkpoint`.

    Raises:
        UsageError: unknown name or backbone.
    """
    _check(name)
    backbone_info(backbone)
    return _BUILDERS[name](backbone=backbone, **kwargs)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (every one of them is used by the forward pass)."""
    return sum(p.numel() for p in model.parameters())


def gflops_per_frame(model: VideoModel, frames: int | None = None, steady_state: bool = True) -> float:
    """GFLOPs (2×multiply-accumulate, ``torch.utils.flop_counter``) per output frame for one
    step at the model's input size, counted on the ``meta`` device (no compute, no memory).

    ``steady_state``: count a step in the middle of a video — CFFM references come from the
    cache, AEN memory is full, the PNS+ anchor is already encoded (each frame is encoded
    once). ``False`` counts a video's first step (PNS+: anchor + clip, which is what the
    official code pays for every clip).
    """
    from copy import deepcopy

    from torch.utils.flop_counter import FlopCounterMode

    spec = model.spec
    t = frames or spec.clip_length
    meta = deepcopy(model).to("meta").eval().requires_grad_(False)
    h, w = spec.input_size
    state = meta.init_state()
    with torch.no_grad():
        anchor = torch.zeros(1, 3, h, w, device="meta") if spec.needs_anchor else None
        if steady_state and (spec.ref_offsets or spec.memory_clips or spec.needs_anchor):
            # Warm the cache/memory so the counted step is a steady-state one.
            warm = max([-o for o in spec.ref_offsets] + [spec.memory_clips * spec.clip_length, 1])
            for _ in range(0, warm, t):
                meta(torch.zeros(1, t, 3, h, w, device="meta"), state, anchor=anchor)
            if spec.needs_anchor:
                anchor = None  # kept in the state: a steady-state step does not re-encode it
        counter = FlopCounterMode(display=False)
        with counter:
            meta(torch.zeros(1, t, 3, h, w, device="meta"), state, anchor=anchor)
    return counter.get_total_flops() / t / 1e9


def architecture_table(with_flops: bool = True) -> list[dict]:
    """One JSON-friendly dict per model and backbone (architectures in registry order, each with every
    backbone): ``name``, ``backbone``, ``params``, ``gflops_per_frame``, ``imagenet`` (ImageNet
    initialisation possible) and the whole spec — what ``vpscli/zoo.json`` holds."""
    rows = []
    for name in available_models():
        for backbone in available_backbones():
            model = build_model(name, backbone=backbone)
            row = model.spec.as_dict()
            row["params"] = count_parameters(model)
            row["gflops_per_frame"] = round(gflops_per_frame(model), 2) if with_flops else None
            row["imagenet"] = backbone_info(backbone).imagenet
            rows.append(row)
    return json.loads(json.dumps(rows))


def describe_models(with_flops: bool = True, weights_dir=None) -> list[dict]:
    """:func:`architecture_table` with the weights columns of :func:`vpscli.zoo.with_weights`
    (bundled files, ``val_maxDice``, ``default``). ``vps models`` reads the same from ``zoo.json``."""
    from vpscli.zoo import with_weights

    return with_weights(architecture_table(with_flops), weights_dir)


def write_zoo() -> None:
    """Regenerate ``vpscli/zoo.json`` from the models (``python -m vpscli.models.registry``)."""
    from vpscli.zoo import ZOO_FILE

    ZOO_FILE.write_text(json.dumps(architecture_table(), indent=1) + "\n")
    print(f"wrote {ZOO_FILE}")


if __name__ == "__main__":  # pragma: no cover - a maintenance command, checked by the zoo test
    write_zoo()
