"""The weights folder: safetensors files listed in ``manifest.json``.

The folder is :func:`vpscli.paths.weights_dir` (``$VPS_WEIGHTS`` or the repository's
``weights/``). ``manifest.json`` is ``{"weights": [entry, ...]}``, each entry::

    {"file": "pns-plus-official.safetensors", "model": "pns-plus", "backbone": "res2net50", "sha256": "…",
     "dtype": "float32", "input_size": [256, 448], "training_data": "…",
     "metrics": {…}, "source": "PNSPlus.pth (official, sha256 …)", "legacy_norm": true}

An entry (or checkpoint) without ``backbone`` predates the backbone choice: ``res2net50``.
These functions back ``vps weights import|list|verify`` and the driver's weight loading.
Nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

from vpscli.errors import InputError, OutputError
# the manifest format and checksums are shared with `vps doctor`, which must not import torch
from vpscli.weights import MANIFEST_NAME as MANIFEST
from vpscli.weights import read_manifest, sha256_file
from vpscli.io.atomic import write_text_atomic

__all__ = ["MANIFEST", "sha256_file", "read_manifest", "bundled_weights", "import_weights", "read_metadata",
           "verify_weights", "find_weights", "load_weights", "entry_backbone", "build_options",
           "default_model", "PREFERENCE"]

#: The backbone of weights that do not record one (every checkpoint written before the choice).
_UNRECORDED_BACKBONE = "res2net50"


def entry_backbone(entry_or_metadata: dict) -> str:
    """The backbone a manifest entry or a checkpoint's metadata records (``res2net50`` when none)."""
    return str(entry_or_metadata.get("backbone") or _UNRECORDED_BACKBONE)


def build_options(entry_or_metadata: dict) -> dict:
    """``build_model`` options that rebuild the network some weights were trained in: ``backbone``
    and ``input_size`` from a manifest entry (``[H, W]``) or checkpoint metadata (``"HxW"``)."""
    size = entry_or_metadata.get("input_size")
    if isinstance(size, str):
        size = size.split("x")
    options = {"backbone": entry_backbone(entry_or_metadata)}
    if size:
        options["input_size"] = tuple(int(v) for v in size)
    return options


def _dir(weights_dir: str | Path | None) -> Path:
    if weights_dir is not None:
        return Path(weights_dir)
    from vpscli.paths import weights_dir as default

    return default()


def bundled_weights(weights_dir: str | Path | None = None) -> list[dict]:
    """Manifest entries whose file is present."""
    root = _dir(weights_dir)
    return [e for e in read_manifest(root) if (root / str(e.get("file", ""))).is_file()]


def _write_manifest(root: Path, entries: list[dict]) -> None:
    write_text_atomic(root / MANIFEST, json.dumps({"weights": entries}, indent=2) + "\n")


def _summary_of_training(meta: dict[str, str]) -> tuple[str, dict, str]:
    """``(training_data, validation metrics, recipe)`` recorded by ``vps train`` in a checkpoint."""
    try:
        data = ", ".join(Path(d).name if Path(d).name != "train" else f"{Path(d).parent.name}/train"
                         for d in json.loads(meta.get("data", "[]")))
        metrics = {k: round(float(v), 4) for k, v in json.loads(meta.get("val_metrics", "{}")).items()}
        val = ", ".join(Path(d).parent.name + "/" + Path(d).name for d in json.loads(meta.get("val_data", "[]")))
    except (ValueError, TypeError, AttributeError):
        return "", {}, ""
    if metrics and val:
        metrics = {"validation_data": val, **metrics}
    recipe = meta.get("recipe", "")
    if meta.get("steps"):
        recipe = f"{meta['steps']} steps done; {recipe}" if recipe else f"{meta['steps']} steps"
    return data, metrics, recipe


def import_weights(source: str | Path, model: str | None = None, *, weights_dir: str | Path | None = None,
                   name: str | None = None, half: bool = False, training_data: str = "",
                   metrics: dict | None = None, note: str = "") -> dict:
    """Register a checkpoint in the weights folder: ours from ``vps train`` or an official ``.pth``.

    The file is read without executing code (safetensors, or ``torch.load(weights_only=True)``),
    loaded strictly into its model (names and shapes) at the input size it was trained at (our
    files record it), saved as ``<name>.safetensors`` and added to (or replaced in)
    ``manifest.json`` with its sha256, model, input size, dtype, training data, validation
    metrics and recipe (taken from ``vps train``'s metadata unless given) and ``note``.

    Args:
        model: the model; default: the one recorded in the checkpoint (required for ``.pth``).
        half: store parameters as float16 (the form vps bundles: half the size).
        note: a line for the model card, e.g. what the weights are good for.

    Returns:
        The manifest entry.

    Raises:
        InputError: the file cannot be read or does not fit ``model``.
        UsageError: unknown model name, or no model given for a file that does not record one.
        OutputError: the weights folder cannot be written.
    """
    from vpscli.errors import UsageError
    from vpscli.models.checkpoint import load_checkpoint, save_checkpoint
    from vpscli.models.registry import build_model

    source = Path(source)
    meta = read_metadata(source)
    recorded = meta.get("model")
    if model is None:
        if not recorded:
            raise UsageError(f"{source.name} does not record its model; pass --model (e.g. --model pns-plus)")
        model = recorded
    elif recorded and recorded != model:
        raise InputError(f"these weights are for model '{recorded}', not '{model}'", path=source,
                         fix=f"pass --model {recorded}")
    net = build_model(model, **build_options(meta))
    report = load_checkpoint(net, source)
    root = _dir(weights_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the weights folder ({e.strerror})", path=root,
                          fix="set VPS_WEIGHTS to a writable folder") from None
    file = f"{name or (model + '-' + source.stem.lower())}.safetensors"
    src_sha = sha256_file(source)
    origin = f"{source.name} ({'official' if report.official else 'vps'}, sha256 {src_sha[:12]})"
    trained_on, trained_metrics, recipe = _summary_of_training(meta)
    training_data = training_data or trained_on
    save_checkpoint(net, root / file, {"source": origin, "training_data": training_data}, half=half)
    entry = {
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
    entries = [e for e in read_manifest(root) if e.get("file") != file] + [entry]
    _write_manifest(root, entries)
    return entry


def read_metadata(path: str | Path) -> dict[str, str]:
    """Metadata of one of our safetensors checkpoints (model, input size, training record);
    ``{}`` for other files and unreadable ones (:func:`load_checkpoint` reports those)."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception:  # safetensors raises its own error types
        return {}


def verify_weights(weights_dir: str | Path | None = None) -> list[dict]:
    """Check every manifest entry: file present, sha256, and that it loads into its model.

    Returns:
        One ``{"file", "model", "ok", "problem"}`` per entry (``problem`` is ``None`` when ok).
    """
    from vpscli.models.checkpoint import load_checkpoint
    from vpscli.models.registry import build_model

    root = _dir(weights_dir)
    results = []
    for e in read_manifest(root):
        file, model = str(e.get("file", "")), str(e.get("model", ""))
        problem = None
        path = root / file
        if not path.is_file():
            problem = "file missing"
        elif sha256_file(path) != e.get("sha256"):
            problem = "sha256 mismatch (file changed or truncated)"
        else:
            try:
                load_checkpoint(build_model(model, **build_options(e)), path)
            except Exception as err:  # report every problem, stop at none
                problem = str(err)
        results.append({"file": file, "model": model, "ok": problem is None, "problem": problem})
    return results


#: Models from best to worst on the benchmarks of the AEN paper (Tables 1–2): the default
#: model is the first one with bundled weights.
PREFERENCE = ("aen-cffm", "aen-pns-plus", "cffm", "pns-plus", "pns-net")


def default_model(weights_dir: str | Path | None = None) -> str:
    """The model ``vps segment`` uses when none is named: the best one with bundled weights
    (``aen-cffm`` when none has any — the error then says what to do)."""
    bundled = {e.get("model") for e in bundled_weights(weights_dir)}
    return next((m for m in PREFERENCE if m in bundled), PREFERENCE[0])


def find_weights(model: str, weights_dir: str | Path | None = None, backbone: str | None = None) -> dict | None:
    """The last-registered present manifest entry for ``model`` (on ``backbone``, or on any
    backbone when ``None``), or ``None``."""
    matches = [e for e in bundled_weights(weights_dir)
               if e.get("model") == model and (backbone is None or entry_backbone(e) == backbone)]
    return matches[-1] if matches else None


def load_weights(net, entry_or_file: dict | str | Path, weights_dir: str | Path | None = None):
    """Load manifest weights into ``net`` after checking the file's sha256.

    Args:
        net: the model.
        entry_or_file: a manifest entry, a file name in the weights folder, or a path.

    Raises:
        InputError: missing file, checksum mismatch, or weights that do not fit.
    """
    from vpscli.models.checkpoint import load_checkpoint

    root = _dir(weights_dir)
    if isinstance(entry_or_file, dict):
        entry = entry_or_file
    else:
        p = Path(entry_or_file)
        entry = next((e for e in read_manifest(root) if e.get("file") == p.name), None)
        if entry is None:
            return load_checkpoint(net, p)
    path = root / str(entry["file"])
    if not path.is_file():
        raise InputError("weights file listed in the manifest is missing", path=path,
                         fix="re-import it with `vps weights import` or remove it from manifest.json")
    if entry.get("sha256") and sha256_file(path) != entry["sha256"]:
        raise InputError("weights file does not match its sha256 in the manifest", path=path,
                         fix="the file is corrupt or was replaced; re-import it")
    return load_checkpoint(net, path)
