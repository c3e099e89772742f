"""Finding what is on disk: the GT's splits, cases and frames, and the files of a prediction folder.

A GT frame is a non-hidden file whose name ends in ``.png`` (lower case, as the toolbox's ``glob('*.png')``
sees it on Linux); a prediction file may end in ``.PNG`` too. Frames are put in sequence order here
(:func:`~vpscli.metrics.ordering.sort_frames`) and trimmed to the evaluated ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.masks import MASK_EXTENSIONS
from vpscli.io.naming import natural_key
from vpscli.metrics.diagnostics import Diagnostics
from vpscli.metrics.layout.diagnose import no_case_error, no_ground_truth_error, split_skipped
from vpscli.metrics.ordering import evaluated_frames, sort_frames

GT_FOLDER = "GT"
#: How deep below the GT root ``GT`` folders are searched for.
MAX_SPLIT_DEPTH = 4


@dataclass
class Sequence:
    """One case (video) of a split: its GT folder and frames."""

    name: str
    gt_dir: Path
    frames: list[str]  #: every GT frame file name, in sequence order
    evaluated: list[str]  #: the frames that are scored (first and last dropped unless --keep-ends)
    sort_rule: str  #: the rule that ordered the frames (see :func:`~vpscli.metrics.ordering.sort_frames`)


@dataclass
class Split:
    """A set of cases averaged together; ``name`` is its path relative to the GT root (``.`` for one)."""

    name: str
    cases_dir: Path
    sequences: list[Sequence]


def _listdir(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as e:
        raise InputError(f"cannot list folder ({e.strerror})", path=folder) from None


def _is_frame(entry: os.DirEntry) -> bool:
    """A frame as the toolbox's ``glob('*.png')`` sees it: a non-hidden file ending in ``.png``."""
    return entry.name.endswith(".png") and not entry.name.startswith(".") and entry.is_file()


def _is_png_any_case(entry: os.DirEntry) -> bool:
    """A prediction file: a non-hidden file ending in ``.png`` in any letter case (``.PNG``)."""
    return entry.name[-4:].lower() == ".png" and not entry.name.startswith(".") and entry.is_file()


def has_frames(folder: Path, any_case: bool = False) -> bool:
    """Whether ``folder`` holds GT frames (``any_case``: or files ending in ``.PNG``)."""
    test = _is_png_any_case if any_case else _is_frame
    return any(test(e) for e in _listdir(folder))


def subdirs(folder: Path) -> list[os.DirEntry]:
    """The non-hidden folders in ``folder``."""
    return [e for e in _listdir(folder) if e.is_dir() and not e.name.startswith(".")]


def folder_names(folder: Path) -> list[str]:
    """The names of the non-hidden folders in ``folder``, in natural order (candidate method folders)."""
    return sorted((e.name for e in subdirs(folder)), key=natural_key)


@dataclass
class PredListing:
    """The files of a prediction folder, by the GT frame name each would stand for."""

    files: dict[str, str]  #: ``<stem>.png`` -> file name (``0001.png``, else ``0001.PNG``)
    others: dict[str, str]  #: ``<stem>.png`` -> image file with another extension (``0001.jpg``)
    #: frame number -> PNG file name, for all-digit names whose number no other PNG here shares
    numbered: dict[int, str] = field(default_factory=dict)

    def find(self, gt_name: str) -> str | None:
        """The file that stands for GT frame ``gt_name``: the same name (``.PNG`` too), else, for all-digit
        names, the same frame number under other zero padding (``000001.png`` for ``00001.png``: vps segment
        writes six digits, DAVIS folders five)."""
        hit = self.files.get(gt_name)
        if hit is None and (number := frame_number(gt_name)) is not None:
            hit = self.numbered.get(number)
        return hit


def frame_number(png_name: str) -> int | None:
    """The frame number of an all-digit ``<digits>.png`` name (``00017.png`` → 17), else ``None``."""
    stem = png_name[:-4]
    return int(stem) if stem.isdigit() and stem.isascii() else None


def list_predictions(folder: Path) -> PredListing:
    """Index a prediction folder: PNGs by name (an exact ``.png`` name wins over ``.PNG``), other images
    by the PNG name they were probably meant to have (for the missing-predictions hint)."""
    files: dict[str, str] = {}
    others: dict[str, str] = {}
    for entry in _listdir(folder):
        name = entry.name
        if name.startswith(".") or not entry.is_file():
            continue
        stem, dot, ext = name.rpartition(".")
        if not dot:
            continue
        key = stem + ".png"
        if ext.lower() == "png":
            if name == key or key not in files:
                files[key] = name
        elif "." + ext.lower() in MASK_EXTENSIONS:
            others.setdefault(key, name)
    by_number: dict[int, list[str]] = {}
    for key, name in files.items():
        if (number := frame_number(key)) is not None:
            by_number.setdefault(number, []).append(name)
    numbered = {n: names[0] for n, names in by_number.items() if len(names) == 1}
    return PredListing(files, others, numbered)


def find_splits(gt_root: Path) -> list[tuple[str, Path]]:
    """(split name, folder of case folders) for every split under ``gt_root``; see :mod:`vpscli.metrics.layout`."""
    if not gt_root.exists():
        raise InputError("ground-truth folder not found", path=gt_root, fix="check the path")
    if not gt_root.is_dir():
        raise InputError("ground truth must be a folder of case folders (or a dataset root)", path=gt_root)
    if gt_root.name == GT_FOLDER:
        return [(".", gt_root)]
    found: list[tuple[str, Path]] = []

    def walk(folder: Path, depth: int) -> None:
        children = subdirs(folder)
        for child in children:
            if child.name == GT_FOLDER:
                rel = folder.relative_to(gt_root).as_posix()
                found.append((rel if rel else ".", Path(child.path)))
        if depth >= MAX_SPLIT_DEPTH:
            return
        for child in children:
            if child.name != GT_FOLDER and not has_frames(Path(child.path)):
                walk(Path(child.path), depth + 1)

    walk(gt_root, 0)
    if found:
        return sorted(found, key=lambda s: natural_key(s[0]))
    if any(has_frames(Path(d.path)) for d in subdirs(gt_root)):
        return [(".", gt_root)]
    if has_frames(gt_root):
        return [(".", gt_root)]  # a single case folder
    upper = has_frames(gt_root, any_case=True) or any(
        has_frames(Path(d.path), True) for d in subdirs(gt_root)
    )
    raise no_ground_truth_error(gt_root, upper)


def load_split(
    name: str, cases_dir: Path, sort_rule: str, keep_ends: bool, diagnostics: Diagnostics
) -> Split:
    """Read a split's cases and frames (sorted and trimmed); what was skipped goes to ``diagnostics``."""
    entries = _listdir(cases_dir)
    stray: list[str] = []
    if any(_is_frame(e) for e in entries) and not any(e.is_dir() for e in entries):
        case_dirs = [(cases_dir.name, cases_dir)]  # one case folder given directly
    else:
        stray = [e.name for e in entries if not e.is_dir() and not e.name.startswith(".")]
        case_dirs = [(e.name, Path(e.path)) for e in entries if e.is_dir() and not e.name.startswith(".")]
    sequences: list[Sequence] = []
    empty: list[str] = []
    natural: list[str] = []
    upper_case: dict[str, int] = {}  # case -> GT files ending in .PNG (not frames, as for the toolbox)
    for case, folder in sorted(case_dirs, key=lambda c: natural_key(c[0])):
        listing = _listdir(folder)
        names = [e.name for e in listing if _is_frame(e)]
        upper = sum(1 for e in listing if _is_png_any_case(e) and not _is_frame(e))
        if upper:
            upper_case[case] = upper
        if not names:
            empty.append(case)
            continue
        ordered, used = sort_frames(case, names, sort_rule)
        if used == "natural" and sort_rule in ("auto", "legacy"):
            natural.append(case)
        sequences.append(Sequence(case, folder, ordered, evaluated_frames(ordered, keep_ends), used))
    split_skipped(diagnostics, name, cases_dir, stray, empty, upper_case, natural)
    return Split(name, cases_dir, sequences)


def load_splits(gt_root: Path, sort_rule: str, keep_ends: bool, diagnostics: Diagnostics) -> list[Split]:
    """The GT's splits that hold at least one case with frames."""
    splits = [load_split(n, d, sort_rule, keep_ends, diagnostics) for n, d in find_splits(gt_root)]
    splits = [s for s in splits if s.sequences]
    if not splits:
        raise no_case_error(gt_root, upper=diagnostics.has("gt-upper-case-png"))
    return splits
