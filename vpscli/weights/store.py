"""Weights into models: import a checkpoint into the weights folder, verify every entry, and load
a model with its weights, hashed once (:func:`load_model`).

Loading is kept apart from predicting (as nnU-Net's predictor separates
``initialize_from_trained_model_folder`` from prediction): :func:`load_model` returns a
:class:`LoadedModel` — network, provenance, verified once — that the segmenter, the batch
runner and the benchmarks take as it is.

Every file is read without executing code (safetensors, or ``torch.load(weights_only=True)``
for official ``.pth`` files). Nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from vpscli.errors import InputError, OutputError, UsageError
from vpscli.models.checkpoint import load_checkpoint, save_checkpoint
from vpscli.models.registry import build_model, get_spec
from vpscli.weights.manifest import (
    UNRECORDED_BACKBONE,
    WeightsEntry,
    bundled_entries,
    default_model,
    find_entry,
    folder_or_default,
    read_default,
    read_manifest,
    sha256_file,
    write_manifest,
)

__all__ = [
    "LoadedModel",
    "load_model",
    "choose_model",
    "import_weights",
    "read_metadata",
    "verify_weights",
    "build_options",
    "metadata_input_size",
]


def read_metadata(path: str | Path) -> dict[str, str]:
    """Metadata of one of our safetensors checkpoints (model, input size, training record);
    ``{}`` for other files and unreadable ones (loading reports those)."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception:  # safetensors raises its own error types
        return {}


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


def build_options(source: WeightsEntry | dict[str, str]) -> dict:
    """``build_model`` options that rebuild the network some weights were trained in (backbone and
    input size), from a manifest entry or a checkpoint's metadata."""
    if isinstance(source, WeightsEntry):
        backbone, size = source.backbone, source.input_size
    else:
        backbone, size = source.get("backbone") or UNRECORDED_BACKBONE, metadata_input_size(source)
    return {"backbone": backbone, **({"input_size": size} if size else {})}


@dataclass(frozen=True)
class LoadedModel:
    """A network with its weights loaded, and where they came from.

    Example: ``loaded = load_model("pns-plus"); Segmenter(loaded, device="cuda")``.

    Attributes:
        net: the :class:`~vpscli.models.base.VideoModel` (on the CPU, eval mode not set).
        weights_path: the file loaded (``None`` for a network given without weights).
        weights_sha256: its sha256, computed once (``None`` without a file).
        entry: the manifest entry when the weights are bundled (model card), else ``None``.
    """

    net: object
    weights_path: Path | None = None
    weights_sha256: str | None = None
    entry: WeightsEntry | None = None

    @property
    def spec(self):
        return self.net.spec

    @property
    def note(self) -> str | None:
        """The bundled weights' model-card line (what they are good for), if they carry one."""
        return (
            f"weights {self.entry.file}: {self.entry.note}"
            if self.entry is not None and self.entry.note
            else None
        )

    def describe(self) -> str:
        """What runs, in one line (:func:`weights_line`)."""
        spec = self.net.spec
        return weights_line(
            spec.name,
            spec.backbone,
            self.weights_path,
            self.weights_sha256,
            _validation_maxdice(self.entry, self.weights_path),
        )


def weights_line(
    model: str, backbone: str, path: Path | None, sha256: str | None, maxdice: float | None
) -> str:
    """``pns-plus on efficientnet-lite2, weights pns-plus-lite2.safetensors (sha256 38675ad126c2), validation
    maxDice 0.806`` — or ``…, no validation record`` for weights that carry no validation figures, and
    ``untrained (random) weights`` for a network given without any."""
    head = f"{model} on {backbone}, "
    if path is None:
        return head + "untrained (random) weights"
    score = "no validation record" if maxdice is None else f"validation maxDice {maxdice:.3f}"
    return head + f"weights {Path(path).name} (sha256 {str(sha256 or '?')[:12]}), {score}"


def _validation_maxdice(entry: WeightsEntry | None, path: Path | None) -> float | None:
    """The validation maxDice of bundled weights (their manifest entry) or of a ``vps train`` checkpoint
    (its metadata); ``None`` when neither records one."""
    metrics = (entry.record.get("metrics") or {}) if entry is not None else {}
    if not metrics and path is not None:
        try:
            metrics = json.loads(read_metadata(path).get("val_metrics", "{}"))
        except ValueError:
            metrics = {}
    value = metrics.get("maxDice") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, (int, float)) and value == value else None


def describe_weights(
    model: str | None = None, weights: str | Path | None = None, folder: str | Path | None = None
) -> str:
    """:meth:`LoadedModel.describe` without loading anything into a network (for the machine that hands
    videos to Ray workers): the weights a run of ``model``/``weights`` would load, from the manifest or the
    file's metadata. Raises as :func:`load_model` does when there are none."""
    name = choose_model(model, weights, folder)
    if weights is not None:
        meta = read_metadata(weights)
        return weights_line(
            name,
            meta.get("backbone") or UNRECORDED_BACKBONE,
            Path(weights),
            sha256_file(weights),
            _validation_maxdice(None, Path(weights)),
        )
    entry = find_entry(name, folder)
    if entry is None:
        _load_bundled(name, folder)  # raises the one-line "no trained weights" error
    return weights_line(name, entry.backbone, entry.path, entry.sha256, _validation_maxdice(entry, None))


def choose_model(
    model: str | None = None, weights: str | Path | None = None, folder: str | Path | None = None
) -> str:
    """The model to run: the one named, else the one ``weights`` records, else :func:`default_model`."""
    return (
        model
        or (read_metadata(weights).get("model") if weights is not None else None)
        or default_model(folder)
    )


def load_model(
    model: str | None = None, weights: str | Path | None = None, *, folder: str | Path | None = None
) -> LoadedModel:
    """Build ``model`` (default: :func:`choose_model`) with ``weights`` (a checkpoint of ours or an
    official ``.pth``), or with its verified bundled weights when ``weights`` is ``None``.

    The network is built at the backbone and input size the weights were trained at.

    Raises:
        UsageError: unknown model name.
        InputError: weights for another model, missing bundled weights (with what to do), a file
            that does not match its sha256 or does not fit the model.
    """
    name = choose_model(model, weights, folder)
    get_spec(name)  # an unknown name is a usage error before it is a missing-weights one
    if weights is None:
        return _load_bundled(name, folder)
    meta = read_metadata(weights)
    if meta.get("model") and meta["model"] != name:
        raise InputError(
            f"these weights are for model '{meta['model']}', not '{name}'",
            path=weights,
            fix=f"pass --model {meta['model']}",
        )
    net = build_model(name, **build_options(meta))
    load_checkpoint(net, weights)
    return LoadedModel(net, Path(weights), sha256_file(weights))


def _load_bundled(name: str, folder: str | Path | None) -> LoadedModel:
    root = folder_or_default(folder)
    entry = find_entry(name, root)
    if entry is None:
        others = sorted({e.model for e in bundled_entries(root)})
        alternative = (
            f"use a model with bundled weights (--model {' / '.join(others)}), or pass "
            if others
            else "pass "
        )
        raise InputError(
            f"no trained weights for model '{name}' are bundled with this vps",
            path=root / "manifest.json",
            fix=alternative + "--weights FILE (train one with `vps train`, or import official PNS weights "
            "with `vps weights import PNSPlus.pth --model pns-plus`)",
        )
    sha = _verified_sha256(entry)
    net = build_model(name, **build_options(entry))
    load_checkpoint(net, entry.path)
    return LoadedModel(net, entry.path, sha, entry)


def _verified_sha256(entry: WeightsEntry) -> str:
    """The file's sha256 (read once), refusing a missing or changed file."""
    if not entry.present:
        raise InputError(
            "weights file listed in the manifest is missing",
            path=entry.path,
            fix="re-import it with `vps weights import` or remove it from manifest.json",
        )
    sha = sha256_file(entry.path)
    if sha != entry.sha256:
        raise InputError(
            "weights file does not match its sha256 in the manifest",
            path=entry.path,
            fix="the file is corrupt or was replaced; re-import it",
        )
    return sha


def load_entry(net, entry: WeightsEntry):
    """Load a manifest entry's weights into ``net`` after checking the file's sha256."""
    _verified_sha256(entry)
    return load_checkpoint(net, entry.path)


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

    Importing never changes which weights ``vps segment`` runs by default (:func:`set_default`).

    Raises:
        InputError: the file cannot be read or does not fit ``model``.
        UsageError: no model given for a file that does not record one, or an unknown name.
        OutputError: the weights folder cannot be written.
    """
    source = Path(source)
    meta = read_metadata(source)
    model = _model_of(source, model, meta)
    net = build_model(model, **build_options(meta))
    report = load_checkpoint(net, source)
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
    _verified_sha256(entry)
    write_manifest(root, entries, default=entry.file)
    return entry


class WeightsCheck(NamedTuple):
    """What :func:`verify_weights` found for one entry: ``ok``, or the ``problem`` in words."""

    entry: WeightsEntry
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_weights(folder: str | Path | None = None) -> list[WeightsCheck]:
    """Check every manifest entry: file present, sha256, and that it loads into its model."""
    results = []
    for entry in read_manifest(folder):
        problem = None
        if not entry.present:
            problem = "file missing"
        elif not entry.matches_file():
            problem = "sha256 mismatch (file changed or truncated)"
        else:
            try:
                load_checkpoint(build_model(entry.model, **build_options(entry)), entry.path)
            except Exception as err:  # report every problem, stop at none
                problem = err.message if isinstance(err, InputError) else str(err)
        results.append(WeightsCheck(entry, problem))
    return results
