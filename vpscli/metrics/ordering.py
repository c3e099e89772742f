"""Frame order inside a sequence, and which frames are evaluated.

The reference sorts each case's ``*.png`` GT files by the first rule that works, then drops the first and
last frame (``[1:-1]``, the DAVSOD convention: optical-flow methods have no output there). Which two frames
are dropped therefore depends on the sort rule.

Rules (``--sort``):

- ``auto`` (default, the toolbox at HEAD): **numeric** — (int(case folder), int(file name with the
  ``.png`` letters stripped from the right)) — else **SUN-SEG** — (number after ``case``, number after the
  folder's ``_`` or 0, the clip id before the first ``-``, the number after ``_a``, the number after
  ``_image``); numbered frames in a case folder named in words (``vps segment``'s ``<video>/000000.png``)
  are ordered by number, as the numeric rule orders frames; where the toolbox would crash (names fitting
  neither rule) vps sorts naturally and says so.
- ``legacy``: the same with the pre-2025 SUN-SEG key (no clip id), which produced the published tables.
- ``sunseg``: the SUN-SEG key only; ``natural``: natural order (``2.png`` before ``10.png``);
  ``name``: plain character order, as MATLAB ``dir`` lists files (the PNS-Net toolbox).

Like the toolbox, the toolbox rules sort the directory listing with a stable sort, so frames with equal
keys keep their listing order (this only happens under ``legacy`` with multi-clip SUN-SEG cases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vpscli.errors import InputError
from vpscli.io.naming import natural_key

SORT_RULES = ("auto", "legacy", "sunseg", "natural", "name")


def numeric_key(case: str, name: str) -> tuple[int, int]:
    """The toolbox's first rule: needs a numeric case folder and numeric file names."""
    return int(case), int(name.rstrip(".png"))


def sunseg_key(case: str, name: str) -> tuple[int, ...]:
    """The toolbox's SUN-SEG rule at HEAD (2025 fix: includes the clip id before the first ``-``)."""
    return (
        int(case.split("case")[1].split("_")[0]),
        int(case.split("_")[1]) if len(case.split("_")) > 1 else 0,
        int(name.split("-")[0].split("_")[-1]),
        int(name.split("_a")[1].split("_")[0]),
        int(name.split("_image")[1].split(".png")[0]),
    )


def legacy_sunseg_key(case: str, name: str) -> tuple[int, ...]:
    """The SUN-SEG rule before 2025 (no clip id): the order behind the published tables."""
    return (
        int(case.split("case")[1].split("_")[0]),
        int(case.split("_")[1]) if len(case.split("_")) > 1 else 0,
        int(name.split("_a")[1].split("_")[0]),
        int(name.split("_image")[1].split(".png")[0]),
    )


def _try_sort(case: str, names: list[str], key: Callable[[str, str], tuple]) -> list[str] | None:
    try:
        return sorted(names, key=lambda n: key(case, n))
    except (ValueError, IndexError):
        return None


def sort_frames(case: str, names: list[str], rule: str = "auto") -> tuple[list[str], str]:
    """Sort the frame file ``names`` (directory order) of case folder ``case`` by ``rule``.

    Returns ``(sorted names, rule used)``, the rule used being ``numeric``, ``sunseg``, ``legacy-sunseg``,
    ``natural`` or ``name``; under ``auto``/``legacy`` a ``natural`` result means the toolbox could not have
    sorted this case. An explicit ``sunseg`` on names that do not fit raises :class:`InputError`.
    """
    if rule == "natural":
        return sorted(names, key=natural_key), "natural"
    if rule == "name":
        return sorted(names), "name"
    if rule == "sunseg":
        ordered = _try_sort(case, names, sunseg_key)
        if ordered is None:
            raise InputError(
                f"frame names do not follow the SUN-SEG pattern (case<N>[_<M>]/…-<clip>_a<K>_…_image<N>.png), "
                f"e.g. {names[0]!r}",
                path=case,
                fix="use --sort auto or --sort natural",
            )
        return ordered, "sunseg"
    if rule not in ("auto", "legacy"):
        raise ValueError(f"unknown sort rule {rule!r}")
    ordered = _try_sort(case, names, numeric_key)
    if ordered is None and all(Path(n).stem.isdigit() for n in names):
        # numbered frames in a case folder named in words (vps segment's `<video>/000000.png`): the
        # toolbox's numeric rule orders the frames by number whatever the case is called
        ordered = sorted(names, key=lambda n: int(Path(n).stem))
    if ordered is not None:
        return ordered, "numeric"
    sunseg, used = (legacy_sunseg_key, "legacy-sunseg") if rule == "legacy" else (sunseg_key, "sunseg")
    ordered = _try_sort(case, names, sunseg)
    if ordered is not None:
        return ordered, used
    return sorted(names, key=natural_key), "natural"


def evaluated_frames(ordered: list[str], keep_ends: bool = False) -> list[str]:
    """The frames that are scored: all but the first and last unless ``keep_ends`` (sequences of 1 or 2
    frames then have none, where the toolbox crashes; the caller reports them)."""
    return list(ordered) if keep_ends else list(ordered[1:-1])
