"""Finding the ground truth and matching predictions to it: what gets evaluated.

Ground truth (``GT`` argument), any of:

- a ``GT/`` folder of case folders (one split, named ``.``);
- a dataset root holding ``GT/`` folders at any depth: SUN-SEG ``TestEasyDataset/Seen/GT/<case>/``,
  ``TestHardDataset/Unseen/GT/...``, or ``<split>/GT/<case>``; each ``GT`` folder is a split named by its
  parent's path relative to the root (``TestEasyDataset/Seen``);
- a folder of case folders not named ``GT``, or one case folder of PNGs (a single sequence).

Predictions (``PRED`` argument) mirror the splits, with or without a method level:
``PRED/<split>/<case>/<frame>.png`` or ``PRED/<method>/<split>/<case>/<frame>.png`` (several methods at
once). Each split may hold a ``Pred/`` level (the PNS-Net MATLAB layout); a flat folder of PNGs (one
``masks/`` folder) is matched to GT frames by file name. A prediction has the GT frame's file name.

``vps segment`` output: a case folder holding ``probs/`` (``--save-prob``: ``floor(255·p)``, what the
benchmark scores) and/or ``masks/`` (thresholded 0/255) is scored from ``probs/`` when it exists, else from
``masks/`` (``use_masks``, ``--use-masks``: ``masks/`` whenever it exists); the plan's notes say which, and
that binary masks flatten every threshold curve. A run folder whose ``run.json`` says the run is partial or
unfinished gets a warning (:attr:`Plan.warnings`).

File names (the toolbox's rules, plus hints where it would fail):

- GT frames are the non-hidden files whose name ends in ``.png`` — lower case, as the toolbox's
  ``glob('*.png')`` sees them on Linux. ``0001.PNG`` in a GT folder is not a frame; it is reported, with
  the fix (rename it).
- A prediction is the GT frame's name in the prediction folder. Its extension may differ in letter case
  (``0001.PNG`` for ``0001.png``): it is used, and a note says so — the toolbox opens the GT name in the
  prediction folder, which finds ``0001.PNG`` on case-insensitive file systems (macOS, Windows) and
  fails on Linux. Another extension (``0001.jpg``) is not a prediction: the missing-predictions error
  names such files and says to save the maps as PNG (JPEG is lossy).

Stray files and empty folders next to the cases, which crash the toolbox, are skipped and reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from vpscli.errors import InputError
from vpscli.io.masks import MASK_EXTENSIONS
from vpscli.io.naming import natural_key
from vpscli.io.run_folder import MASKS, PROBS, RunFolder
from vpscli.metrics.ordering import evaluated_frames, sort_frames

GT_FOLDER = "GT"
#: Optional level between a split and its cases in prediction trees (PNS-Net MATLAB layout).
PRED_FOLDER = "Pred"
#: Per-case subfolders that ``vps segment`` writes: thresholded masks, and probabilities (``--save-prob``).
MASKS_FOLDER = MASKS
PROBS_FOLDER = PROBS
#: How deep below the GT root ``GT`` folders are searched for.
MAX_SPLIT_DEPTH = 4
#: How many names an error message lists.
LIST_LIMIT = 8


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


@dataclass
class Plan:
    """What will be evaluated: splits, methods, and the prediction folder of every (split, method, case)."""

    gt_root: Path
    pred_root: Path
    splits: list[Split]
    methods: list[str]  #: method folder names, or ``["."]`` when predictions have no method level
    #: (split name, method) -> case name -> prediction folder (None: no predictions for that case)
    pred_dirs: dict[tuple[str, str], dict[str, Path | None]]
    sort_rule: str = "auto"
    keep_ends: bool = False
    missing: list[Path] = field(default_factory=list)  #: evaluated frames without a prediction file
    notes: list[str] = field(default_factory=list)  #: things the user should know, in plain words
    #: lost or partial data (partial ``vps segment`` runs): to be shown even when notes are silenced
    warnings: list[str] = field(default_factory=list)
    #: expected prediction path -> the file that stands for it (``0001.PNG`` or ``000001.png`` for ``0001.png``)
    renamed: dict[Path, Path] = field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str]]:
        """(split, method) pairs that have predictions, in report order."""
        return [(s.name, m) for s in self.splits for m in self.methods if (s.name, m) in self.pred_dirs]

    def frame_jobs(self):
        """Yield ``(split, case, frame, gt_path, {method: pred_path or None})`` for every evaluated frame.

        A frame is read once for all methods. A ``None`` prediction is a missing file (``--allow-missing``).
        """
        missing = set(self.missing)
        for split in self.splits:
            methods = [m for m in self.methods if (split.name, m) in self.pred_dirs]
            for seq in split.sequences:
                for name in seq.evaluated:
                    preds: dict[str, Path | None] = {}
                    for method in methods:
                        folder = self.pred_dirs[(split.name, method)].get(seq.name)
                        path = None if folder is None else folder / name
                        path = self.renamed.get(path, path) if path is not None else None
                        preds[method] = None if path is None or path in missing else path
                    yield split.name, seq.name, name, seq.gt_dir / name, preds

    @property
    def n_frames(self) -> int:
        """Evaluated GT frames (each scored once per method)."""
        return sum(len(q.evaluated) for s in self.splits for q in s.sequences)


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


def list_frames(folder: Path) -> list[str]:
    """PNG frame names of ``folder`` in directory order (the order the toolbox's stable sort starts from)."""
    return [e.name for e in _listdir(folder) if _is_frame(e)]


def _has_frames(folder: Path, any_case: bool = False) -> bool:
    test = _is_png_any_case if any_case else _is_frame
    return any(test(e) for e in _listdir(folder))


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


def _subdirs(folder: Path) -> list[os.DirEntry]:
    return [e for e in _listdir(folder) if e.is_dir() and not e.name.startswith(".")]


def find_splits(gt_root: Path) -> list[tuple[str, Path]]:
    """(split name, folder of case folders) for every split under ``gt_root``; see the module docstring."""
    if not gt_root.exists():
        raise InputError("ground-truth folder not found", path=gt_root, fix="check the path")
    if not gt_root.is_dir():
        raise InputError("ground truth must be a folder of case folders (or a dataset root)", path=gt_root)
    if gt_root.name == GT_FOLDER:
        return [(".", gt_root)]
    found: list[tuple[str, Path]] = []

    def walk(folder: Path, depth: int) -> None:
        children = _subdirs(folder)
        for child in children:
            if child.name == GT_FOLDER:
                rel = folder.relative_to(gt_root).as_posix()
                found.append((rel if rel else ".", Path(child.path)))
        if depth >= MAX_SPLIT_DEPTH:
            return
        for child in children:
            if child.name != GT_FOLDER and not _has_frames(Path(child.path)):
                walk(Path(child.path), depth + 1)

    walk(gt_root, 0)
    if found:
        return sorted(found, key=lambda s: natural_key(s[0]))
    if any(_has_frames(Path(d.path)) for d in _subdirs(gt_root)):
        return [(".", gt_root)]
    if _has_frames(gt_root):
        return [(".", gt_root)]  # a single case folder
    upper = _has_frames(gt_root, any_case=True) or any(
        _has_frames(Path(d.path), True) for d in _subdirs(gt_root)
    )
    raise InputError(
        "no ground truth found: expected GT/<case>/*.png, <split>/GT/<case>/*.png or <case>/*.png"
        + (
            " (the files here end in .PNG; GT frames must end in lower-case .png, as the toolbox globs *.png)"
            if upper
            else ""
        ),
        path=gt_root,
        fix="rename the GT files to lower-case .png"
        if upper
        else "point GT at a GT folder, a dataset root with GT folders, or a folder of case folders of PNG masks",
    )


def load_split(name: str, cases_dir: Path, sort_rule: str, keep_ends: bool, notes: list[str]) -> Split:
    """Read a split's cases and frames (sorted and trimmed)."""
    entries = _listdir(cases_dir)
    if any(_is_frame(e) for e in entries) and not any(e.is_dir() for e in entries):
        case_dirs = [(cases_dir.name, cases_dir)]  # one case folder given directly
    else:
        stray = [e.name for e in entries if not e.is_dir() and not e.name.startswith(".")]
        if stray:
            notes.append(
                f"{_where(name)}ignored {len(stray)} file(s) beside the case folders in {cases_dir} "
                f"(e.g. {stray[0]}); only folders are cases"
            )
        case_dirs = [(e.name, Path(e.path)) for e in entries if e.is_dir() and not e.name.startswith(".")]
    sequences: list[Sequence] = []
    empty: list[str] = []
    fallback: list[str] = []
    off_case: dict[str, int] = {}  # case -> GT files ending in .PNG (not frames, as for the toolbox)
    for case, folder in sorted(case_dirs, key=lambda c: natural_key(c[0])):
        listing = _listdir(folder)
        names = [e.name for e in listing if _is_frame(e)]
        upper = sum(1 for e in listing if _is_png_any_case(e) and not _is_frame(e))
        if upper:
            off_case[case] = upper
        if not names:
            empty.append(case)
            continue
        ordered, used = sort_frames(case, names, sort_rule)
        if used == "natural" and sort_rule in ("auto", "legacy"):
            fallback.append(case)
        sequences.append(Sequence(case, folder, ordered, evaluated_frames(ordered, keep_ends), used))
    if empty:
        notes.append(f"{_where(name)}skipped {len(empty)} case folder(s) without PNG frames: {_names(empty)}")
    if off_case:
        notes.append(
            f"{_where(name)}ignored {sum(off_case.values())} GT file(s) ending in .PNG (upper case) in "
            f"{_names(list(off_case))}: GT frames are *.png, as the toolbox globs them — rename them to "
            ".png to score them"
        )
    if fallback:
        notes.append(
            f"{_where(name)}{len(fallback)} case(s) have names that fit neither toolbox sort rule (numeric, "
            f"SUN-SEG) and were sorted naturally: {_names(fallback)}"
        )
    return Split(name, cases_dir, sequences)


def _where(split: str) -> str:
    return "" if split == "." else f"{split}: "


def _names(names: list[str], limit: int = LIST_LIMIT) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _segment_subfolder(folder: Path, use_masks: bool) -> Path | None:
    """The ``probs/`` or ``masks/`` folder of a ``vps segment`` case folder to score, if it has one
    (:meth:`RunFolder.scored_folder`: probabilities first, ``use_masks`` picks ``masks/``)."""
    return RunFolder(folder).scored_folder(use_masks)


def _case_folder(case: str, subdirs: dict[str, Path], use_masks: bool) -> Path | None:
    folder = subdirs.get(case)
    if folder is None:
        return None
    return _segment_subfolder(folder, use_masks) or folder


def _match_split(
    root: Path, split: Split, allow_flat: bool, use_masks: bool = False
) -> tuple[dict[str, Path | None], int, list[str]]:
    """Prediction folder of each case of ``split`` under ``root`` (a method folder or the prediction root).

    Returns (case -> folder or None, number of cases matched, prediction folders that are not GT cases).
    """
    base = root if split.name == "." else root / split.name
    best: tuple[dict[str, Path | None], int, list[str]] = ({q.name: None for q in split.sequences}, 0, [])
    for candidate in (base, base / PRED_FOLDER):
        if not candidate.is_dir():
            continue
        subdirs = {e.name: Path(e.path) for e in _subdirs(candidate)}
        folders = {q.name: _case_folder(q.name, subdirs, use_masks) for q in split.sequences}
        matched = sum(f is not None for f in folders.values())
        extra: list[str] = []
        flat = _flat_folder(candidate, use_masks) if matched == 0 and allow_flat else None
        if flat is not None:
            folders = _match_flat(flat, split)
            matched = sum(f is not None for f in folders.values())
        else:
            gt_cases = {q.name for q in split.sequences}
            extra = sorted((n for n in subdirs if n not in gt_cases and n != PRED_FOLDER), key=natural_key)
        if matched > best[1]:
            best = (folders, matched, extra)
    return best


def _flat_folder(folder: Path, use_masks: bool) -> Path | None:
    """``folder`` when it holds prediction PNGs, else the ``probs/`` or ``masks/`` folder of a ``vps segment``
    case folder given directly; None when neither holds any."""
    if _has_frames(folder, any_case=True):
        return folder
    sub = _segment_subfolder(folder, use_masks)
    return sub if sub is not None and _has_frames(sub, any_case=True) else None


def _match_flat(folder: Path, split: Split) -> dict[str, Path | None]:
    """A flat folder of predictions (e.g. one ``vps segment`` ``masks/`` folder) against a split's cases.

    A folder named after a case (or a ``masks/`` folder inside one) belongs to that case; otherwise its
    files are matched to cases by file name, which must then be unambiguous.
    """
    hint = RunFolder.of(folder).path.name
    cases = {q.name: q for q in split.sequences}
    if hint in cases:
        return {name: folder if name == hint else None for name in cases}
    listing = list_predictions(folder)
    found = {q.name: {n for n in q.frames if listing.find(n) is not None} for q in split.sequences}
    hits = [q for q in split.sequences if found[q.name]]
    if len(hits) > 1:
        seen: dict[str, str] = {}
        for q in hits:
            for n in sorted(found[q.name]):
                if n in seen:
                    raise InputError(
                        f"frame name {n} occurs in GT cases {seen[n]} and {q.name}, so a flat folder of "
                        "predictions cannot be matched by name",
                        path=folder,
                        fix="point GT at the matching case folder, or give predictions as PRED/<case>/<frame>.png",
                    )
                seen[n] = q.name
    hit_names = {q.name for q in hits}
    return {name: folder if name in hit_names else None for name in cases}


def _method_folders(pred_root: Path) -> list[str]:
    return sorted((e.name for e in _subdirs(pred_root)), key=natural_key)


def build_plan(
    pred_root: str | Path,
    gt_root: str | Path,
    *,
    sort_rule: str = "auto",
    keep_ends: bool = False,
    allow_missing: bool = False,
    matched_only: bool = False,
    methods: list[str] | None = None,
    use_masks: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> Plan:
    """Discover the GT, match the predictions, and check that every evaluated frame has a prediction.

    Raises :class:`InputError` when nothing matches (showing both case lists), when predictions are
    missing (listing the first ones), unless ``allow_missing`` (missing maps are scored as all-zero) or
    ``matched_only`` (GT cases without any prediction folder are left out), and when no frame is left to
    score (every sequence has ≤ 2 frames and ``keep_ends`` is off).

    ``use_masks``: score ``masks/`` rather than ``probs/`` of ``vps segment`` case folders holding both.
    ``on_warning`` is called with each warning as soon as it is found — before an error about the same
    predictions is raised — and the warnings are also kept in :attr:`Plan.warnings`.
    """
    pred_root, gt_root = Path(pred_root), Path(gt_root)
    if not pred_root.exists():
        raise InputError("prediction folder not found", path=pred_root, fix="check the path")
    if not pred_root.is_dir():
        raise InputError("predictions must be a folder", path=pred_root)
    notes: list[str] = []
    splits = _load_splits(gt_root, sort_rule, keep_ends, notes)
    method_names, pred_dirs = _match_predictions(pred_root, splits, methods, use_masks, notes)
    for split in splits:
        for method in method_names:
            if (split.name, method) not in pred_dirs and method != ".":
                notes.append(
                    f"{_where(split.name)}method {method} has no predictions for this split; skipped"
                )
    folders = list(dict.fromkeys(f for table in pred_dirs.values() for f in table.values() if f is not None))
    notes += _segment_notes(folders, pred_root)
    warnings = _run_warnings(folders, on_warning)
    if matched_only:
        splits = _drop_unmatched(splits, method_names, pred_dirs, notes)
    missing, renamed = _check_frames(splits, method_names, pred_dirs, pred_root, allow_missing, notes)
    if missing:  # the scores are not the model's: said even under --quiet
        warning = (
            f"{len(missing)} missing prediction(s) scored as all-zero maps (--allow-missing): every score "
            f"is lower than the predictions that exist would give, e.g. {missing[0]}"
        )
        warnings.append(warning)
        if on_warning is not None:
            on_warning(warning)
    splits = [s for s in splits if s.sequences]
    if not splits:
        raise InputError(
            "no GT case is left to evaluate", path=gt_root, fix="check --matched-only and the layout"
        )
    plan = Plan(
        gt_root,
        pred_root,
        splits,
        method_names,
        pred_dirs,
        sort_rule,
        keep_ends,
        missing=missing,
        notes=notes,
        warnings=warnings,
        renamed=renamed,
    )
    if plan.n_frames == 0:
        n_seq = sum(len(s.sequences) for s in plan.splits)
        raise InputError(
            f"nothing to score: all {n_seq} sequence(s) have at most 2 frames, and the benchmark protocol "
            "drops the first and last frame of every sequence (the toolbox crashes here)",
            path=gt_root,
            fix="use --keep-ends to score every frame (not comparable with published tables), "
            "or evaluate longer sequences",
        )
    return plan


def _load_splits(gt_root: Path, sort_rule: str, keep_ends: bool, notes: list[str]) -> list[Split]:
    """The GT's splits that hold at least one case with frames (notes on what was skipped go to ``notes``)."""
    splits = [load_split(n, d, sort_rule, keep_ends, notes) for n, d in find_splits(gt_root)]
    splits = [s for s in splits if s.sequences]
    if not splits:
        upper = [n for n in notes if "ending in .PNG" in n]
        raise InputError(
            "no case folder with PNG frames found in the ground truth"
            + (
                " (its files end in .PNG; GT frames must end in lower-case .png, as the toolbox globs *.png)"
                if upper
                else ""
            ),
            path=gt_root,
            fix="rename the GT files to lower-case .png" if upper else None,
        )
    return splits


#: (split name, method) -> case name -> prediction folder (None: no predictions for that case)
PredDirs = dict[tuple[str, str], dict[str, Path | None]]


def _match_root(
    root: Path, splits: list[Split], allow_flat: bool, use_masks: bool
) -> tuple[dict[str, dict[str, Path | None]], int, list[str]]:
    """Every split's cases matched under ``root``: (split -> case -> folder, cases matched, extra folders)."""
    found, total, extra = {}, 0, []
    for split in splits:
        folders, matched, extra_here = _match_split(root, split, allow_flat, use_masks)
        if matched:
            found[split.name] = folders
            total += matched
            extra += [f"{_where(split.name)}{e}" for e in extra_here]
    return found, total, extra


def _match_predictions(
    pred_root: Path, splits: list[Split], methods: list[str] | None, use_masks: bool, notes: list[str]
) -> tuple[list[str], PredDirs]:
    """The methods and their prediction folders. Predictions without a method level (``PRED/[<split>/]<case>``,
    or one flat folder) are the one method ``.``, unless ``methods`` names method folders; otherwise each
    folder of ``pred_root`` is a method. Raises when nothing matches the GT cases."""
    flat, total, extra = _match_root(pred_root, splits, True, use_masks)
    if total and not methods:
        if extra:
            notes.append(f"ignored {len(extra)} prediction folder(s) that are not GT cases: {_names(extra)}")
        return ["."], {(s, "."): f for s, f in flat.items()}
    candidates = _method_folders(pred_root)
    if methods:
        unknown = [m for m in methods if m not in candidates]
        if unknown and total:  # the folders are the GT's cases: there is no method level to choose from
            raise InputError(
                f"--method {', '.join(unknown)}: these predictions have no method folders (the "
                f"folders here are GT cases)",
                path=pred_root,
                fix="leave out --method, or give the folder that holds one folder per method",
            )
        if unknown:
            raise InputError(
                f"method folder(s) not found: {', '.join(unknown)}",
                path=pred_root,
                fix=f"choose among: {_names(candidates) or '(no folders)'}",
            )
        candidates = [m for m in candidates if m in methods]
    method_names, unmatched, extra_cases = [], [], []
    pred_dirs: PredDirs = {}
    for method in candidates:
        found, total, extra = _match_root(pred_root / method, splits, False, use_masks)
        if total:
            method_names.append(method)
            pred_dirs.update({(s, method): f for s, f in found.items()})
            extra_cases += [f"{method}/{e}" for e in extra]
        else:
            unmatched.append(method)
    if unmatched and method_names:
        notes.append(f"ignored folder(s) without predictions for these GT cases: {_names(unmatched)}")
    if not pred_dirs:
        raise _no_match_error(pred_root, splits)
    if extra_cases:
        notes.append(
            f"ignored {len(extra_cases)} prediction folder(s) that are not GT cases: {_names(extra_cases)}"
        )
    return method_names, pred_dirs


def _no_match_error(pred_root: Path, splits: list[Split]) -> InputError:
    """No prediction folder matches a GT case: both lists, and what to name the files."""
    gt_cases = [f"{_where(s.name)}{q.name}" for s in splits for q in s.sequences]
    here = list_predictions(pred_root)
    found_names = _method_folders(pred_root) or sorted(
        {*here.files.values(), *here.others.values()}, key=natural_key
    )
    not_png = not here.files and here.others and not _method_folders(pred_root)
    return InputError(
        f"no prediction matches the ground-truth cases. GT cases: {_names(gt_cases)}. "
        f"Found in {pred_root}: {_names(found_names) or '(nothing)'}"
        + (" (not PNG files: only .png predictions are read)" if not_png else ""),
        path=pred_root,
        fix="predictions must be PRED/[<method>/][<split>/]<case>/<frame>.png with the GT file names"
        + (" (save the maps as PNG)" if not_png else ""),
    )


def _run_warnings(folders: list[Path], on_warning: Callable[[str], None] | None) -> list[str]:
    """One warning per ``vps segment`` run folder that is partial or unfinished, each passed to ``on_warning``
    as it is found."""
    warnings: list[str] = []
    for folder in folders:
        warning = RunFolder.of(folder).partial_warning()
        if warning is not None and warning not in warnings:  # one per run folder
            warnings.append(warning)
            if on_warning is not None:
                on_warning(warning)
    return warnings


def _segment_notes(folders: list[Path], pred_root: Path) -> list[str]:
    """Say which folder of ``vps segment`` case folders was scored, and what binary masks do to the metrics."""
    probs_over_masks = [f for f in folders if f.name == PROBS_FOLDER and (f.parent / MASKS_FOLDER).is_dir()]
    masks_only = [f for f in folders if f.name == MASKS_FOLDER and not (f.parent / PROBS_FOLDER).is_dir()]
    with_probs = [f for f in folders if f.name == MASKS_FOLDER and (f.parent / PROBS_FOLDER).is_dir()]
    given = [f for f in with_probs if f == pred_root]  # a masks/ folder named on the command line
    masks_chosen = [f for f in with_probs if f != pred_root]
    notes = []
    binary = (
        "binary 0/255 maps give the same result at every threshold, so max and mean metrics "
        "(maxDice/meanDice, maxEm/meanEm …) nearly coincide and fall below what probability maps score"
    )
    if probs_over_masks:
        notes.append(
            f"scored probs/ (probability maps, what the benchmark expects) of {len(probs_over_masks)} "
            f"vps segment folder(s) that also hold masks/, e.g. {probs_over_masks[0].parent}; "
            "--use-masks scores the thresholded masks/ instead"
        )
    if masks_chosen:
        notes.append(
            f"scored masks/ of {len(masks_chosen)} vps segment folder(s) (--use-masks), e.g. "
            f"{masks_chosen[0].parent}: {binary}"
        )
    if given:
        notes.append(
            f"scored {given[0]} as given: {binary}; the probs/ folder beside it holds the probability maps "
            f"the benchmark expects — pass {given[0].parent} to score them"
        )
    if masks_only:
        notes.append(
            f"scored masks/ of {len(masks_only)} folder(s) without probs/, e.g. {masks_only[0].parent}: vps "
            f"segment writes thresholded masks there; {binary} — run vps segment with --save-prob for "
            "benchmark numbers (its probs/ are then scored)"
        )
    return notes


def _check_frames(
    splits: list[Split],
    methods: list[str],
    pred_dirs: PredDirs,
    pred_root: Path,
    allow_missing: bool,
    notes: list[str],
) -> tuple[list[Path], dict[Path, Path]]:
    """The evaluated frames without a prediction file, and the files that stand for a GT name under another
    letter case (``0001.PNG``); notes extra predictions, and raises on missing ones unless allowed — saying
    when a missing file is there under another extension."""
    found = _find_predictions(splits, methods, pred_dirs)
    extra = sum(len(set(found.listing[f].files.values()) - used) for f, used in found.used.items())
    if extra:
        notes.append(f"ignored {extra} prediction file(s) without a GT frame")
    by_case = {gt: p for gt, p in found.renamed.items() if gt.name.lower() == p.name.lower()}
    if by_case:
        gt, p = next(iter(by_case.items()))
        notes.append(
            f"{len(by_case)} prediction file(s) differ from the GT name only in the extension's letter "
            f"case (e.g. {p.name} for {gt.name}) and are scored; the toolbox finds them only "
            "on case-insensitive file systems (macOS, Windows) — rename them to .png for a portable layout"
        )
    by_number = {gt: p for gt, p in found.renamed.items() if gt not in by_case}
    if by_number:
        gt, p = next(iter(by_number.items()))
        notes.append(
            f"{len(by_number)} prediction file(s) carry the GT frame's number with other zero padding (e.g. "
            f"{p.name} for {gt.name}) and are scored as that frame; the toolbox matches exact names only — "
            "rename them for a portable layout"
        )
    if found.n_missing and not allow_missing:
        raise _missing_error(found, pred_root)
    for folder, (shift, gt_name, pred_name) in found.shifted.items():
        notes.append(
            f"the predictions in {folder} look numbered {shift:+d} from the ground truth ({pred_name} "
            f"where GT {gt_name} is expected): they were scored by their own numbers, not shifted"
        )
    return found.missing, found.renamed


@dataclass
class _Found:
    """What :func:`_find_predictions` found for the evaluated frames."""

    missing: list[Path] = field(default_factory=list)  #: expected prediction files that are not there
    missing_cases: list[str] = field(default_factory=list)  #: GT cases without a prediction folder
    n_missing: int = 0  #: evaluated frames without a prediction (both kinds)
    other_ext: list[str] = field(default_factory=list)  #: missing predictions present as .jpg etc.
    #: ``0001.png`` -> ``0001.PNG`` (letter case) or ``000001.png`` (zero padding)
    renamed: dict[Path, Path] = field(default_factory=dict)
    listing: dict[Path, PredListing] = field(default_factory=dict)
    used: dict[Path, set[str]] = field(default_factory=dict)  #: prediction files that stand for a GT frame
    #: prediction folders whose numbers are the GT's shifted by a constant: ``(shift, GT name, its
    #: shifted prediction)``, e.g. ``(1, "000000.png", "001.png")``
    shifted: dict[Path, tuple[int, str, str]] = field(default_factory=dict)


def _find_predictions(splits: list[Split], methods: list[str], pred_dirs: PredDirs) -> _Found:
    """Look up every evaluated frame's prediction file, for every method."""
    found = _Found()
    for split in splits:
        for method in methods:
            folders = pred_dirs.get((split.name, method))
            if folders is None:
                continue
            prefix = ("" if method == "." else f"{method}/") + _where(split.name)
            for seq in split.sequences:
                folder = folders.get(seq.name)
                if folder is None:
                    found.missing_cases.append(prefix + seq.name)
                    found.n_missing += len(seq.evaluated)
                    continue
                if folder not in found.listing:
                    found.listing[folder] = list_predictions(folder)
                files = found.listing[folder]
                found.used.setdefault(folder, set()).update(
                    hit for hit in map(files.find, seq.frames) if hit is not None
                )
                n_before = found.n_missing
                for name in seq.evaluated:
                    actual = files.find(name)
                    if actual is None:
                        found.missing.append(folder / name)
                        found.n_missing += 1
                        if name in files.others:
                            found.other_ext.append(files.others[name])
                    elif actual != name:
                        found.renamed[folder / name] = folder / actual
                if found.n_missing > n_before and (shift := number_shift(seq.frames, files)):
                    first = seq.frames[0]
                    found.shifted[folder] = (shift, first, files.numbered[frame_number(first) + shift])
    return found


def number_shift(gt_frames: list[str], files: PredListing) -> int | None:
    """The constant ``k`` (not 0) for which every all-digit GT frame ``n`` has a prediction numbered ``n + k``
    and no other ``k`` does, or ``None``: frames numbered from 1 against GT numbered from 0 (ffmpeg's
    ``%03d.jpg`` starts at 1). Only a hint for the error message: vps never scores frames by a guessed shift."""
    gt = [frame_number(n) for n in gt_frames]
    if not gt or None in gt or not files.numbered:
        return None
    pred = set(files.numbered)
    shifts = {p - gt[0] for p in pred} - {0}
    fits = [k for k in shifts if all(n + k in pred for n in gt)]
    return fits[0] if len(fits) == 1 else None


def _missing_error(found: _Found, pred_root: Path) -> InputError:
    """Predictions are missing: how many, the first ones, and the fix (PNG names when they exist as .jpg)."""
    msg = f"{found.n_missing} prediction(s) missing"
    if found.missing_cases:
        msg += f"; GT cases without a prediction folder: {_names(found.missing_cases)}"
    if found.missing:
        msg += f"; first missing files: {', '.join(str(p) for p in found.missing[:5])}"
    fix = "add them, or use --allow-missing to score them as all-zero maps"
    if found.shifted:
        folder, (shift, gt_name, pred_name) = next(iter(found.shifted.items()))
        msg += (
            f"; the predictions in {folder} are numbered {abs(shift)} {'higher' if shift > 0 else 'lower'} "
            f"than the ground truth's frames ({pred_name} where GT {gt_name} is expected"
            f"{': frames extracted from 1, GT from 0?' if shift == 1 else ''}); vps does not guess an offset"
        )
        fix = (
            "segment the same frames the ground truth was drawn on, with their names, or rename the "
            "predictions to the GT's frame numbers if you know they match"
        )
    other_ext = found.other_ext
    if other_ext:
        ext = other_ext[0].rpartition(".")[2]
        msg += (
            f"; {len(other_ext)} of them exist with another extension (e.g. {other_ext[0]}), which is not "
            "read: predictions are PNG files named like the GT frames"
        )
        fix = (
            f"save the maps as PNG with the GT's names (convert the .{ext} files, e.g. "
            f"{other_ext[0]} -> {Path(other_ext[0]).stem}.png; JPEG is lossy, so re-export from the "
            "model's maps where you can), or use --allow-missing to score them as all-zero maps"
        )
    return InputError(
        msg,
        path=pred_root,
        fix=fix
        + (", or --matched-only to leave out the cases without predictions" if found.missing_cases else ""),
    )


def _drop_unmatched(
    splits: list[Split], methods: list[str], pred_dirs: PredDirs, notes: list[str]
) -> list[Split]:
    """--matched-only: the splits with only the cases that every method evaluated on the split has predictions for."""
    kept = []
    for split in splits:
        tables = [pred_dirs[(split.name, m)] for m in methods if (split.name, m) in pred_dirs]
        dropped = (
            [q.name for q in split.sequences if any(t.get(q.name) is None for t in tables)] if tables else []
        )
        if dropped:
            split = replace(split, sequences=[q for q in split.sequences if q.name not in dropped])
            notes.append(
                f"{_where(split.name)}left out {len(dropped)} GT case(s) without predictions "
                f"(--matched-only): {_names(dropped)}"
            )
        kept.append(split)
    return kept
