"""The model registry: every model, its spec and its place in the order of preference; parameter and
FLOP summaries for ``vps models``.

Each model module registers its own models (:func:`register_model` on the class that builds them), and
the package imports each model module, so adding a model touches its module and its tests only. The
registry owns the order: :func:`available_models` lists the names by rank, the first is what
``build_model`` and ``vps train`` default to, and the torch-free ``vpscli/zoo.json`` (help texts,
``vps models``, the weights manifest's fallback) is generated from it in the same order.

A model is an architecture (its name) on a backbone (:mod:`vpscli.models.backbone`), the
``backbone`` option of :func:`build_model`; ``res2net50`` when none is named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

import torch

from vpscli.errors import UsageError
from vpscli.models.backbone import DEFAULT_BACKBONE, available_backbones, backbone_info
from vpscli.models.base import ModelSpec, VideoModel

__all__ = [
    "RegisteredModel",
    "register_model",
    "available_models",
    "model_of_keys",
    "get_spec",
    "check_network_size",
    "build_model",
    "count_parameters",
    "gflops_per_frame",
    "describe_models",
]

Builder = TypeVar("Builder", bound=Callable[..., VideoModel])


@dataclass(frozen=True)
class RegisteredModel:
    """One entry of the registry.

    Attributes:
        spec: the model's :class:`ModelSpec` on ``res2net50`` at its native input size (its ``name`` is
            the registry name).
        rank: its place in the order of preference, lowest first (the best on the AEN paper's
            benchmarks, Tables 1–2, comes first).
        build: called as ``build(backbone=..., **options)``, returns the untrained model.
        key_prefix: a state-dict key prefix that only this model's checkpoints have (``None``: none
            declared), which names the model a checkpoint that does not fit is for.
    """

    spec: ModelSpec
    rank: int
    build: Callable[..., VideoModel]
    key_prefix: str | None = None


#: registry name → entry, filled by :func:`register_model` as the model modules are imported
_REGISTRY: dict[str, RegisteredModel] = {}


def register_model(spec: ModelSpec, rank: int, key_prefix: str | None = None) -> Callable[[Builder], Builder]:
    """Register the decorated builder — a :class:`VideoModel` subclass, or a function returning one —
    as the model ``spec.name``, ``rank``-th in the order of preference (lowest first; ranks are spaced
    so that a new model fits between two others); ``key_prefix``: see :class:`RegisteredModel`::

        @register_model(CFFM_SPEC, rank=30, key_prefix="decode_head.decoder_focal.")
        class CFFM(VideoModel): ...

    Raises:
        ValueError: the name or the rank is taken.
    """

    def add(build: Builder) -> Builder:
        if spec.name in _REGISTRY:
            raise ValueError(f"a model named '{spec.name}' is registered already")
        holder = next((m.spec.name for m in _REGISTRY.values() if m.rank == rank), None)
        if holder is not None:
            raise ValueError(f"cannot register '{spec.name}' at rank {rank}: '{holder}' holds it")
        _REGISTRY[spec.name] = RegisteredModel(spec, rank, build, key_prefix)
        return build

    return add


def available_models() -> list[str]:
    """Registered model names in the order of preference, the default first."""
    return [m.spec.name for m in sorted(_REGISTRY.values(), key=lambda m: m.rank)]


def model_of_keys(keys: Iterable[str]) -> str | None:
    """The registered model whose :attr:`~RegisteredModel.key_prefix` one of ``keys`` starts with
    (``None``: no such model)."""
    keys = list(keys)
    for m in _REGISTRY.values():
        if m.key_prefix is not None and any(k.startswith(m.key_prefix) for k in keys):
            return m.spec.name
    return None


def _registered(name: str) -> RegisteredModel:
    if name not in _REGISTRY:
        raise UsageError(f"unknown model '{name}'", fix="choose one of: " + ", ".join(available_models()))
    return _REGISTRY[name]


def get_spec(name: str, backbone: str = DEFAULT_BACKBONE) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model on ``backbone`` at its native input size.

    Raises:
        UsageError: unknown model or backbone.
    """
    return _registered(name).spec.with_backbone(backbone)


def check_network_size(size: Iterable[int]) -> tuple[int, int]:
    """A network input ``(H, W)`` that training and a weights import accept: both multiples of 32 (every
    stride-32 map has whole cells) and at least 64.

    Raises:
        UsageError: another size, written as ``--size`` takes it (WIDTHxHEIGHT).
    """
    hw = tuple(int(s) for s in size)
    if len(hw) != 2 or any(s < 64 or s % 32 for s in hw):
        given = f"{hw[1]}x{hw[0]}" if len(hw) == 2 else str(hw)
        raise UsageError(
            f"--size must be WIDTHxHEIGHT with both multiples of 32 and at least 64, got {given}"
        )
    return hw[0], hw[1]


def build_model(name: str | None = None, backbone: str = DEFAULT_BACKBONE, **kwargs) -> VideoModel:
    """Build a registered model with fresh (untrained) weights, on the CPU, in train mode.

    Args:
        name: one of :func:`available_models` (``None``: the first of them).
        backbone: one of :func:`~vpscli.models.backbone.available_backbones` (randomly
            initialised; ImageNet weights come from :func:`vpscli.models.pretrained.load_imagenet`).
        **kwargs: model options, e.g. ``input_size=(H, W)`` (every model). Weights are loaded
            separately with :func:`vpscli.models.load_checkpoint`.

    Raises:
        UsageError: unknown name or backbone.
    """
    entry = _registered(available_models()[0] if name is None else name)
    backbone_info(backbone)
    return entry.build(backbone=backbone, **kwargs)


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
    from vpscli.zoo_file import ZOO_FILE

    ZOO_FILE.write_text(json.dumps(architecture_table(), indent=1) + "\n")
    print(f"wrote {ZOO_FILE}")


if __name__ == "__main__":  # pragma: no cover - a maintenance command, checked by the zoo test
    # Run as a script, this file is a second copy of the module with an empty registry: the models
    # registered themselves in the package's copy.
    import importlib

    importlib.import_module("vpscli.models.registry").write_zoo()
