"""``zoo.json``, the model registry as the torch-free parts of vps read it.

The file beside this module holds one row per model and backbone — its spec, parameters, GFLOPs per
frame — with the models in the registry's order of preference. It is generated from the registry
(``python -m vpscli.models.registry``) and ``tests/test_models.py`` checks that it equals the
computation, so it cannot go stale. Help texts, ``vps models`` (:mod:`vpscli.zoo`) and the weights
manifest's choice of a default model read it here, without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ZOO_FILE", "architecture_rows", "model_names"]

ZOO_FILE = Path(__file__).with_name("zoo.json")


def architecture_rows() -> list[dict]:
    """The rows of ``zoo.json``: one per model and backbone, models in the order of preference."""
    return json.loads(ZOO_FILE.read_text())


def model_names() -> list[str]:
    """Every model's name in the order of preference (the default first), without importing torch: what
    help texts list."""
    return list(dict.fromkeys(row["name"] for row in architecture_rows()))
