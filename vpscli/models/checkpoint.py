"""Checkpoint I/O: our safetensors files and official PNS-Net/PNS+ ``.pth`` files.

- ``.safetensors``: our format; metadata records the model name, backbone, input size and
  whether the weights expect the legacy PNS column normalisation.
- anything else: ``torch.load(..., weights_only=True)`` — tensors only, pickled code is
  never executed; a file that needs code to load is refused with an :class:`InputError`.

Official files are plain state dicts (possibly under ``state_dict``/``model``, possibly with
DataParallel's ``module.`` prefix). Keys of modules the official networks build but never
run (``squeeze.*``, ``feature_extractor.layer4.*``, ``feature_extractor.fc.*``) are skipped.
Nothing here touches the network.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vpscli.errors import InputError
from vpscli.models.base import VideoModel
from vpscli.models.registry import model_of_keys

__all__ = ["LoadReport", "read_state_dict", "load_checkpoint", "save_checkpoint", "OFFICIAL_UNUSED_PREFIXES"]

#: Prefixes present in every official PNS checkpoint for modules that are never run.
OFFICIAL_UNUSED_PREFIXES = ("squeeze.", "feature_extractor.layer4.", "feature_extractor.fc.")


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did.

    Attributes:
        path: the file.
        official: the file is an official (non-vps) checkpoint.
        loaded: number of tensors loaded.
        skipped: keys ignored because the official networks never use them.
        legacy_norm: the model now uses the legacy PNS column normalisation.
        metadata: safetensors metadata (empty for ``.pth``).
    """

    path: str
    official: bool
    loaded: int
    skipped: list[str] = field(default_factory=list)
    legacy_norm: bool = False
    metadata: dict[str, str] = field(default_factory=dict)


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str], bool]:
    """Read a checkpoint without building a model.

    Returns:
        ``(state_dict, metadata, official)``: ``module.`` prefixes stripped; ``official`` is
        true for anything that is not one of our safetensors files.

    Raises:
        InputError: missing, unreadable, or not a state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path=path, fix="check the path")
    metadata: dict[str, str] = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                metadata = dict(f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types
            raise InputError(
                f"not a readable safetensors file ({e})",
                path=path,
                fix="re-create it with `vps weights import` or re-download it",
            ) from None
        official = metadata.get("format") != "vps"
    else:
        _check_torch_file(path)
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise InputError(
                "refusing to load: the file needs Python code to unpickle (only plain tensors are accepted)",
                path=path,
                fix="export a plain state dict (torch.save(model.state_dict(), ...)) from a trusted environment",
            ) from e
        except Exception as e:
            raise InputError(
                f"not a readable PyTorch checkpoint ({type(e).__name__}: {e})",
                path=path,
                fix="check that the download is complete",
            ) from None
        if isinstance(obj, Mapping) and "optimizer" in obj and "step" in obj and "model" in obj:
            raise InputError(
                "is a vps train snapshot (what --resume continues from), not a weights file",
                path=path,
                fix=f"pass best.safetensors or last.safetensors from {path.parent}",
            )
        for wrapper in ("state_dict", "model", "net", "network"):
            if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
        if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
            raise InputError(
                "not a state dict of tensors",
                path=path,
                fix="pass the model's weight file (e.g. PNSPlus.pth), not a training snapshot",
            )
        state = dict(obj)
        official = True
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    return state, metadata, official


def _check_torch_file(path: Path) -> None:
    """A ``torch.save`` file starts as a zip archive (``PK``) or, in the legacy format, a pickle (0x80):
    anything else (a text file, an HTML error page saved as .pth, an empty file) is named for what it is."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return
    if not head:
        what = "an empty file (0 bytes)"
    elif head.lstrip().lower().startswith((b"<!doctype", b"<html")):
        what = "an HTML page, not a checkpoint (a download that saved an error or login page?)"
    elif all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        what = "a text file, not a PyTorch checkpoint"
    else:
        what = "not a PyTorch checkpoint (neither a torch.save archive nor a pickle)"
    raise InputError(
        f"is {what}",
        path=path,
        fix="pass the weights file itself (.pth from torch.save, or a vps .safetensors)",
    )


def _list(keys: list[str], n: int = 4) -> str:
    head = ", ".join(keys[:n])
    return head + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _resize_spatial(state: dict, expected: Mapping[str, torch.Tensor]) -> list[str]:
    """Resize, in place, each tensor of ``state`` that differs from ``expected`` only in its last two
    (spatial) dimensions, bilinearly: the NS blocks' LayerNorm over ``(C, H, W)`` holds one affine
    weight per feature-map position, so weights trained at one input size start a run at another.
    Returns the resized keys."""
    resized = []
    for k, v in expected.items():
        t = state.get(k)
        if t is None or t.shape == v.shape or t.ndim != v.ndim or t.ndim < 3 or t.shape[:-2] != v.shape[:-2]:
            continue
        flat = t.float().reshape(1, -1, *t.shape[-2:])
        out = F.interpolate(flat, size=tuple(v.shape[-2:]), mode="bilinear", align_corners=False)
        state[k] = out.reshape(v.shape).to(t.dtype)
        resized.append(k)
    return resized


def metadata_input_size(meta: dict[str, str]) -> tuple[int, int] | None:
    """The ``(H, W)`` a checkpoint records: ``"[H, W]"`` (JSON, as vps writes it now), or ``"HxW"`` as
    checkpoints before it wrote it (the one place an ``AxB`` string means height first)."""
    text = meta.get("input_size")
    if not text:
        return None
    try:
        h, w = json.loads(text) if text.lstrip().startswith("[") else text.lower().split("x")
        return int(h), int(w)
    except (ValueError, TypeError):
        return None


def _resize_flat_positions(model: nn.Module, state: dict, metadata: Mapping[str, str]) -> None:
    """Let each module whose weights hold flattened per-position columns (AEN's region MLPs, which
    alone know their maps' shapes) resize them from the input size recorded in the weights' metadata."""
    input_size = metadata_input_size(dict(metadata))
    if input_size is None:
        return
    for name, module in model.named_modules():
        resize = getattr(module, "resize_positions", None)
        if callable(resize):
            resize(state, f"{name}." if name else "", input_size)


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    legacy_norm: bool | None = None,
    resize_spatial: bool = False,
) -> LoadReport:
    """Load weights into ``model`` (strict: every parameter and buffer must be present).

    Args:
        model: a model from :func:`vpscli.models.build_model`.
        path: ``.safetensors`` (ours) or an official ``.pth``.
        legacy_norm: force the legacy PNS column normalisation on/off; default: on for
            official PNS-Net/PNS+ files, as recorded in the metadata for ours.
        resize_spatial: weights trained at another input size: resize the per-position
            parameters (shape ``(..., H, W)``) bilinearly to the model's (fine-tuning at a new size).

    Raises:
        InputError: the file cannot be read safely, or does not fit the model (names the
            missing/unexpected/mis-shaped keys and the model the file seems to be for).
    """
    state, metadata, official = read_state_dict(path)
    spec = getattr(model, "spec", None)
    name = spec.name if spec is not None else type(model).__name__
    recorded = metadata.get("backbone") or ("res2net50" if metadata.get("format") == "vps" else None)
    if spec is not None and recorded and recorded != spec.backbone:
        raise InputError(
            f"these weights are for {name} on backbone {recorded}, not {spec.backbone}",
            path=path,
            fix=f"build the model with backbone={recorded!r} (vps train --backbone {recorded})",
        )
    expected = model.state_dict()
    if resize_spatial:
        _resize_spatial(state, expected)
        _resize_flat_positions(model, state, metadata)
    skipped = [k for k in state if k not in expected and k.startswith(OFFICIAL_UNUSED_PREFIXES)]
    for k in skipped:
        del state[k]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state[k].shape)}≠{tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mis_shaped:
        guess = model_of_keys(state)
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys: {_list(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys: {_list(unexpected)}")
        if mis_shaped:
            problems.append(f"{len(mis_shaped)} shape mismatches: {_list(mis_shaped, 2)}")
        if guess and guess != name:
            fix = f"this looks like a {guess} checkpoint; use that model"
        elif mis_shaped:
            fix = (
                "build the model with the input size the weights were trained at (see the weights' metadata)"
            )
        else:
            fix = f"pass a checkpoint trained for {name}"
        raise InputError(f"does not fit model {name}: " + "; ".join(problems), path=path, fix=fix)
    model.load_state_dict(state, strict=True)
    if legacy_norm is None:
        if official:
            legacy_norm = name in ("pns-net", "pns-plus")
        else:
            legacy_norm = metadata.get("legacy_norm", "false") == "true"
    if isinstance(model, VideoModel):
        model.legacy_norm = bool(legacy_norm)
    return LoadReport(
        path=str(path),
        official=official,
        loaded=len(state),
        skipped=skipped,
        legacy_norm=bool(legacy_norm),
        metadata=metadata,
    )


def save_checkpoint(
    model: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None, *, half: bool = False
) -> Path:
    """Write ``model``'s state dict as our safetensors format (contiguous, CPU) with metadata
    ``format=vps``, ``model``, ``backbone``, ``input_size``, ``legacy_norm`` plus ``metadata``.

    Args:
        half: store floating-point parameters as float16 (half the file; loading casts them
            back). Buffers (batch-norm statistics) stay float32: running variances can leave
            float16's range, and they are a small part of the file.

    Raises:
        InputError: ``half`` and a parameter does not fit float16 (the file is not written).
    """
    from safetensors.torch import save

    path = Path(path)
    spec = getattr(model, "spec", None)
    meta = {"format": "vps", "legacy_norm": "true" if getattr(model, "legacy_norm", False) else "false"}
    if spec is not None:
        meta["model"] = spec.name
        meta["backbone"] = spec.backbone
        meta["input_size"] = json.dumps(list(spec.input_size))  # [H, W]: no "AxB" order to guess
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if half:
        params = {name for name, _ in model.named_parameters()}
        for k in params & tensors.keys():
            v = tensors[k]
            if v.is_floating_point():
                if not torch.isfinite(v).all() or v.abs().max() > torch.finfo(torch.float16).max:
                    raise InputError(
                        f"parameter {k} does not fit float16",
                        path=path,
                        fix="store the weights in float32 (leave out --half)",
                    )
                tensors[k] = v.half()
        meta["dtype"] = "float16"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_canonical_header(save(tensors, metadata=meta)))
    return path


def _canonical_header(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted: safetensors writes the metadata
    in hash order, so two saves of the same weights would differ in bytes (and sha256). The tensor data
    (offsets relative to its start) is unchanged; the header stays padded to 8 bytes."""
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + blob[8 + n :]
