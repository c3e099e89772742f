"""The metric catalogue: the reference toolbox's 17 keys, which measure computes each, and the default sets.

Every key is one of three kinds:

- a **scalar** measure averaged over frames (``Smeasure``, ``wFmeasure``, ``MAE``, ``adpEm``, ``adpFm``);
- ``max<X>`` / ``mean<X>``: the maximum / mean over the 256 thresholds of the dataset-mean curve ``X``
  (``Em``, ``Fm``, ``Dice``, ``IoU``, ``Sen``, ``Spe``).

Keys are spelled exactly as GewelsJI/VPS ``eval/vps_evaluator.py`` spells them, so reports can be diffed
against its ``eval-result/*.txt`` tables.
"""

from __future__ import annotations

from vpscli.errors import UsageError

#: All keys, in the toolbox's order.
METRIC_KEYS: tuple[str, ...] = (
    "Smeasure", "wFmeasure", "MAE",
    "adpEm", "meanEm", "maxEm",
    "adpFm", "meanFm", "maxFm",
    "meanDice", "maxDice", "meanIoU", "maxIoU",
    "meanSen", "maxSen", "meanSpe", "maxSpe",
)  # fmt: skip

#: The columns of the published SUN-SEG tables (MIR 2022): S_alpha, E_phi^mn, F_beta^w, F_beta^mn, Dice, Sen.
PUBLISHED_METRICS: tuple[str, ...] = ("Smeasure", "meanEm", "wFmeasure", "meanFm", "maxDice", "meanSen")

#: What ``vps evaluate`` reports without ``--metrics``: the published columns plus maxIoU and MAE.
DEFAULT_METRICS: tuple[str, ...] = PUBLISHED_METRICS + ("maxIoU", "MAE")

#: Per-frame scalar measures: key -> measure family.
SCALAR_KEYS: dict[str, str] = {
    "Smeasure": "smeasure",
    "wFmeasure": "wfmeasure",
    "MAE": "mae",
    "adpEm": "emeasure",
    "adpFm": "fmeasure",
}

#: Curve names (256 points, strict -> lenient) -> measure family.
CURVE_FAMILY: dict[str, str] = {
    "Em": "emeasure",
    "Fm": "fmeasure",
    "Dice": "medical",
    "IoU": "medical",
    "Sen": "medical",
    "Spe": "medical",
}

#: Every measure family a frame can be scored with.
FAMILIES: tuple[str, ...] = ("smeasure", "wfmeasure", "mae", "emeasure", "fmeasure", "medical")


def split_key(key: str) -> tuple[str, str | None]:
    """``"maxDice"`` -> ``("max", "Dice")``; a scalar key -> ``("scalar", None)``."""
    if key in SCALAR_KEYS:
        return "scalar", None
    for prefix in ("max", "mean"):
        if key.startswith(prefix) and key[len(prefix) :] in CURVE_FAMILY:
            return prefix, key[len(prefix) :]
    raise KeyError(key)


def family_of(key: str) -> str:
    """The measure family that computes ``key``."""
    kind, curve = split_key(key)
    return SCALAR_KEYS[key] if curve is None else CURVE_FAMILY[curve]


def families_for(keys: tuple[str, ...] | list[str]) -> frozenset[str]:
    """The measure families needed to report ``keys``."""
    return frozenset(family_of(k) for k in keys)


def parse_metrics(spec: str | None) -> tuple[str, ...]:
    """Parse ``--metrics``: comma-separated keys (any case), ``all``, ``published`` or ``default``.

    Returns the keys in the order given (duplicates dropped). Raises :class:`UsageError` naming the
    valid keys for anything unknown.
    """
    if spec is None or not spec.strip():
        return DEFAULT_METRICS
    by_folded = {k.casefold(): k for k in METRIC_KEYS}
    groups = {"all": METRIC_KEYS, "published": PUBLISHED_METRICS, "default": DEFAULT_METRICS}
    keys: list[str] = []
    unknown: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        folded = token.casefold()
        if folded in groups:
            keys.extend(groups[folded])
        elif folded in by_folded:
            keys.append(by_folded[folded])
        else:
            unknown.append(token)
    if unknown or not keys:
        raise UsageError(
            f"unknown metric {', '.join(repr(u) for u in unknown) or repr(spec)}",
            fix=f"use 'all', 'published', 'default' or any of: {', '.join(METRIC_KEYS)}",
        )
    return tuple(dict.fromkeys(keys))
