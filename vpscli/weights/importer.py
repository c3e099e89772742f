"""Adding weights to the weights folder: import a checkpoint (ours from ``vps train``, or an official
``.pth``) with its model card, and choose the weights ``vps segment`` runs by default.

Every import loads the file strictly into its model first, so the folder never holds weights that do not
load; importing never changes the default (:func:`set_default` does).
"""

from __future__ import annotations

import json
from pathlib import Path

from vpscli.errors import InputError, OutputError, UsageError
from vpscli.models.checkpoint import load_checkpoint, save_checkpoint
from vpscli.models.registry import build_model, check_network_size, get_spec
from vpscli.weights.manifest import (
    WeightsEntry,
    folder_or_default,
    format_size,
    read_default,
    read_manifest,
    sha256_file,
    write_manifest,
)
from vpscli.weights.store import build_options, read_metadata, verified_sha256

__all__ = ["import_weights", "set_default"]


def _summary_of_training(meta: dict[str, str]) -> tuple[str, dict, str]:
    """``(training_data, validation metrics, recipe)`` recorded by ``vps train`` in a checkpoint."""
    try:
        data = ", ".join(
            Path(d).name if Path(d).name != "train" else f"{Path(d).parent.name}/train"
            for d in json.loads(meta.get("data", "[]"))
        )
        metrics = {k: round(float(v), 4) for k, v in json.loads(meta.get("val_metrics", "{}")).items()}
        val = ", ".join(
            Path(d).parent.name + "/" + Path(d).name for d in json.loads(meta.get("val_data", "[]"))
        )
    except (ValueError, TypeError, AttributeError):
        return "", {}, ""
    if metrics and val:
        metrics = {"validation_data": val, **metrics}
    recipe = meta.get("recipe", "")
    if meta.get("steps"):
        recipe = f"{meta['steps']} steps done; {recipe}" if recipe else f"{meta['steps']} steps"
    return data, metrics, recipe


def _model_of(source: Path, model: str | None, meta: dict[str, str]) -> str:
    recorded = meta.get("model")
    if model is None:
        if not recorded:
            raise UsageError(f"{source.name} does not record its model; pass --model (e.g. --model pns-plus)")
        return recorded
    if recorded and recorded != model:
        raise InputError(
            f"these weights are for model '{recorded}', not '{model}'",
            path=source,
            fix=f"pass --model {recorded}",
        )
    return model


def import_weights(
    source: str | Path,
    model: str | None = None,
    *,
    folder: str | Path | None = None,
    name: str | None = None,
    half: bool = False,
    training_data: str = "",
    metrics: dict | None = None,
    note: str = "",
    overwrite: bool = False,
    size: tuple[int, int] | None = None,
) -> WeightsEntry:
    """Register a checkpoint in the weights folder: ours from ``vps train`` or an official ``.pth``.

    The file is loaded strictly into its model (names and shapes) at the input size it was trained
    at, saved as ``<name>.safetensors`` and added to (or replaced in) ``manifest.json`` with its
    sha256, model, input size, dtype, training data, validation metrics and recipe (taken from
    ``vps train``'s metadata unless given) and ``note``.

    Args:
        model: the model; default: the one recorded in the checkpoint (required for ``.pth``).
        half: store parameters as float16 (the form vps bundles: half the size).
        note: a line for the model card, e.g. what the weights are good for.
        overwrite: replace a file of the same name (never the folder's default weights).
        size: ``(H, W)`` to run the weights at instead of their training size: the per-position
            parameters are resized as for fine-tuning at a new size, and the training's validation
            metrics, measured at the training size, are not carried over (``metrics`` gives the ones
            measured at ``size``).

    Importing never changes which weights ``vps segment`` runs by default (:func:`set_default`).

    Raises:
        InputError: the file cannot be read or does not fit ``model``.
        UsageError: no model given for a file that does not record one, an unknown name, or a ``size``
            that is not two multiples of 32 of at least 64.
        OutputError: the weights folder cannot be written.
    """
    source = Path(source)
    meta = read_metadata(source)
    model = _model_of(source, model, meta)
    options = build_options(meta)
    trained_size = tuple(options.get("input_size") or get_spec(model).input_size)
    size = check_network_size(size) if size is not None else None
    resized = size is not None and size != trained_size
    net = build_model(model, **{**options, "input_size": size} if resized else options)
    report = load_checkpoint(net, source, resize_spatial=resized)
    root = folder_or_default(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot create the weights folder ({e.strerror})",
            path=root,
            fix="set VPS_WEIGHTS to a writable folder",
        ) from None
    file = f"{name or (model + '-' + source.stem.lower())}.safetensors"
    _check_target(root, file, overwrite)
    origin = f"{source.name} ({'official' if report.official else 'vps'}, sha256 {sha256_file(source)[:12]})"
    trained_on, trained_metrics, recipe = _summary_of_training(meta)
    if resized:
        trained_metrics = {}
        at = f"trained at {format_size(trained_size)}, run at {format_size(net.spec.input_size)} (W×H)"
        recipe = (f"{recipe}; " if recipe else "") + at + " with the per-position weights resized"
    training_data = training_data or trained_on
    save_checkpoint(net, root / file, {"source": origin, "training_data": training_data}, half=half)
    record = {
        "file": file,
        "model": model,
        "backbone": net.spec.backbone,
        "sha256": sha256_file(root / file),
        "dtype": "float16" if half else "float32",
        "input_size": list(net.spec.input_size),
        "training_data": training_data,
        "metrics": dict(metrics or trained_metrics),
        "recipe": recipe,
        "source": origin,
        "legacy_norm": report.legacy_norm,
        "note": note,
    }
    entry = WeightsEntry.from_json(record, root)
    write_manifest(root, [e for e in read_manifest(root) if e.file != file] + [entry])
    return entry


def _check_target(root: Path, file: str, overwrite: bool) -> None:
    """Refuse to replace the default weights, or any registered file without ``overwrite``."""
    if "/" in file or "\\" in file or file.startswith("."):
        raise UsageError(
            f"--name must be a plain file name, got {file!r}", fix="give a name such as my-weights"
        )
    if file == read_default(root):
        raise OutputError(
            f"{file} is the default weights of this folder, which an import never replaces",
            path=root / file,
            fix="import under another --name",
        )
    if (root / file).exists() and not overwrite:
        raise OutputError(
            "a weights file of this name exists",
            path=root / file,
            fix="choose another --name, or pass --overwrite to replace it",
        )


def set_default(file: str, folder: str | Path | None = None) -> WeightsEntry:
    """Make ``file`` (a registered, present and verified entry) the weights ``vps segment`` runs by default."""
    root = folder_or_default(folder)
    entries = read_manifest(root)
    entry = next((e for e in entries if e.file in (file, f"{file}.safetensors")), None)
    if entry is None:
        raise UsageError(
            f"no weights named {file} in {root}",
            fix=f"give one of: {', '.join(e.file for e in entries) or 'none (import one first)'}",
        )
    verified_sha256(entry)
    write_manifest(root, entries, default=entry.file)
    return entry
