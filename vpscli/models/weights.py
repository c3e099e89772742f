"""The weights folder: safetensors files listed in ``manifest.json``.

The folder is :func:`vpscli.paths.weights_dir` (``$VPS_WEIGHTS`` or the repository's
``weights/``). ``manifest.json`` is ``{"weights": [entry, ...]}``, each entry::

    {"file": "pns-plus-official.safetensors", "model": "pns-plus", "sha256": "…",
     "dtype": "float32", "input_size": [256, 448], "training_data": "…",
     "metrics": {…}, "source": "PNSPlus.pth (official, sha256 …)", "legacy_norm": true}

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

__all__ = ["MANIFEST", "sha256_file", "read_manifest", "bundled_weights", "import_official",
           "verify_weights", "find_weights", "load_weights"]

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


def import_official(source: str | Path, model: str, *, weights_dir: str | Path | None = None,
                    name: str | None = None, training_data: str = "", metrics: dict | None = None) -> dict:
    """Convert an official checkpoint into our format and register it in the manifest.

    The ``.pth`` is read with ``weights_only=True`` (no pickled code runs), checked against
    the model (names and shapes), saved as ``<name>.safetensors`` with the legacy
    normalisation flag, and added to (or replaced in) ``manifest.json``.

    Returns:
        The manifest entry.

    Raises:
        InputError: the file cannot be read or does not fit ``model``.
        UsageError: unknown model name.
        OutputError: the weights folder cannot be written.
    """
    from vpscli.models.checkpoint import load_checkpoint, save_checkpoint
    from vpscli.models.registry import build_model

    source = Path(source)
    net = build_model(model)
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
    save_checkpoint(net, root / file, {"source": origin, "training_data": training_data})
    entry = {
        "file": file,
        "model": model,
        "sha256": sha256_file(root / file),
        "dtype": "float32",
        "input_size": list(net.spec.input_size),
        "training_data": training_data,
        "metrics": dict(metrics or {}),
        "source": origin,
        "legacy_norm": report.legacy_norm,
    }
    entries = [e for e in read_manifest(root) if e.get("file") != file] + [entry]
    _write_manifest(root, entries)
    return entry


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
                size = e.get("input_size")
                load_checkpoint(build_model(model, **({"input_size": tuple(size)} if size else {})), path)
            except Exception as err:  # report every problem, stop at none
                problem = str(err)
        results.append({"file": file, "model": model, "ok": problem is None, "problem": problem})
    return results


def find_weights(model: str, weights_dir: str | Path | None = None) -> dict | None:
    """The last-registered present manifest entry for ``model``, or ``None``."""
    matches = [e for e in bundled_weights(weights_dir) if e.get("model") == model]
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
