"""Weights into models: load a model with its weights, hashed once (:func:`load_model`), and verify
every entry of the weights folder (importing into the folder: :mod:`vpscli.weights.importer`).

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

from vpscli.errors import InputError
from vpscli.models.checkpoint import load_checkpoint, metadata_input_size
from vpscli.models.registry import build_model, get_spec
from vpscli.weights.manifest import (
    UNRECORDED_BACKBONE,
    WeightsEntry,
    bundled_card,
    bundled_entries,
    default_model,
    find_entry,
    folder_or_default,
    read_manifest,
    sha256_file,
)

__all__ = [
    "LoadedModel",
    "load_model",
    "choose_model",
    "weights_card",
    "read_metadata",
    "verify_weights",
    "build_options",
    "metadata_input_size",
    "verified_sha256",
    "load_entry",
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
    model: str | None = None,
    weights: str | Path | None = None,
    folder: str | Path | None = None,
    *,
    sha256: str | None = None,
) -> str:
    """:meth:`LoadedModel.describe` without loading anything into a network (for the machine that hands
    videos to Ray workers): the weights a run of ``model``/``weights`` would load, from the manifest or the
    file's metadata (``sha256``: the file's, when the caller has hashed it already). Raises as
    :func:`load_model` does when there are none."""
    name = choose_model(model, weights, folder)
    if weights is not None:
        sha = sha256 or sha256_file(weights)
        card = weights_card(name, weights, folder, sha256=sha)
        backbone = read_metadata(weights).get("backbone") or UNRECORDED_BACKBONE
        return weights_line(name, backbone, Path(weights), sha, _validation_maxdice(card, Path(weights)))
    entry = weights_card(name, None, folder)
    if entry is None:
        _load_bundled(name, folder)  # raises the one-line "no trained weights" error
    return weights_line(name, entry.backbone, entry.path, entry.sha256, _validation_maxdice(entry, None))


def weights_card(
    model: str | None = None,
    weights: str | Path | None = None,
    folder: str | Path | None = None,
    *,
    sha256: str | None = None,
) -> WeightsEntry | None:
    """The model card a run of ``model``/``weights`` carries (:attr:`LoadedModel.entry`), without loading
    anything: the bundled entry the run would load, or the one whose file has the sha256 of ``weights``
    (``sha256``: the file's, when the caller has hashed it already)."""
    if weights is not None:
        return bundled_card(sha256 or sha256_file(weights), folder)
    return find_entry(choose_model(model, weights, folder), folder)


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
    sha = sha256_file(weights)
    return LoadedModel(net, Path(weights), sha, bundled_card(sha, folder))


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
    sha = verified_sha256(entry)
    net = build_model(name, **build_options(entry))
    load_checkpoint(net, entry.path)
    return LoadedModel(net, entry.path, sha, entry)


def verified_sha256(entry: WeightsEntry) -> str:
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
    verified_sha256(entry)
    return load_checkpoint(net, entry.path)


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
