"""The model zoo as ``vps models`` shows it, without importing torch.

``zoo.json`` (:mod:`vpscli.zoo_file`) holds what each architecture is on each backbone — parameters,
GFLOPs per frame at its input size, window, state, normalisation: what
:func:`vpscli.models.describe_models` computes by building every model (seconds, and torch).
``tests/test_models.py`` checks that the file equals the computation, so it cannot go stale; regenerate
it after changing a model with::

    python -m vpscli.models.registry

The weights columns (bundled files, validation maxDice, the default) come from the weights manifest
(:func:`with_weights`), the one rule both ``vps models`` and :func:`describe_models` use. The rows and
the model names in the order of preference (:func:`architecture_rows`, :func:`model_names`) are those of
:mod:`vpscli.zoo_file`.
"""

from __future__ import annotations

from vpscli.weights.manifest import bundled_entries, default_model, find_entry
from vpscli.zoo_file import architecture_rows, model_names

__all__ = ["architecture_rows", "model_names", "with_weights", "describe_zoo"]

#: the backbone a model is shown with when no weights name one (``vpscli.models.backbone.DEFAULT_BACKBONE``,
#: repeated here to keep this module free of torch; the zoo test checks they agree)
_DEFAULT_BACKBONE = "res2net50"


def with_weights(rows: list[dict], weights_dir=None) -> list[dict]:
    """``rows`` with ``weights`` (bundled files for that model and backbone), ``val_maxDice`` (the
    validation maxDice of the weights ``--model`` runs on that backbone, ``None`` without) and ``default``
    (what ``vps segment`` runs when no model is named)."""
    bundled = bundled_entries(weights_dir)
    default = default_model(weights_dir)
    chosen = find_entry(default, weights_dir)
    default_backbone = chosen.backbone if chosen is not None else _DEFAULT_BACKBONE
    out = []
    for row in rows:
        name, backbone = row["name"], row["backbone"]
        entry = find_entry(name, weights_dir, backbone)
        score = (entry.record.get("metrics") or {}).get("maxDice") if entry is not None else None
        out.append(
            {
                **row,
                "weights": [e.file for e in bundled if e.model == name and e.backbone == backbone],
                "val_maxDice": float(score) if isinstance(score, (int, float)) else None,
                "default": name == default and backbone == default_backbone,
            }
        )
    return out


def describe_zoo(weights_dir=None) -> list[dict]:
    """What :func:`vpscli.models.describe_models` returns, read from ``zoo.json`` (instant, no torch)."""
    return with_weights(architecture_rows(), weights_dir)
