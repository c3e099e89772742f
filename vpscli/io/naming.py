"""Natural ordering of file names: ``seq1_img2`` before ``seq1_img10``, ``2.png`` before ``10.png``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, TypeVar

_DIGITS = re.compile(r"(\d+)")
T = TypeVar("T", str, Path)


def natural_key(name: str | Path) -> tuple:
    """Sort key splitting a name into text and integer runs (case-insensitive text).

    Integer runs compare as numbers; ties (``01`` vs ``1``) fall back to the raw text so
    the order is total and deterministic.
    """
    text = name.name if isinstance(name, Path) else str(name)
    parts = _DIGITS.split(text)
    key = tuple((0, int(p), p) if i % 2 else (1, p.casefold(), p) for i, p in enumerate(parts) if p != "")
    return key


def natural_sorted(names: Iterable[T]) -> list[T]:
    """``names`` in natural order (see :func:`natural_key`).

    >>> natural_sorted(["img10.png", "img2.png", "IMG1.png", "img01.png"])
    ['IMG1.png', 'img01.png', 'img2.png', 'img10.png']
    """
    return sorted(names, key=natural_key)
