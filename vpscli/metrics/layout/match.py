"""Pairing predictions with the ground truth: a prediction folder per (split, method, case), then a prediction
file per evaluated GT frame.

A case's folder is ``[<method>/][<split>/][Pred/]<case>`` (or its ``probs/``/``masks/`` when it is a ``vps
segment`` case folder); a flat folder of PNGs is matched to cases by file name. A frame's file is the GT
frame's name, in any letter case of ``.png``, else the same frame number under other zero padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.naming import natural_key
from vpscli.io.run_folder import RunFolder
from vpscli.metrics.diagnostics import Diagnostics, where
from vpscli.metrics.layout.diagnose import (
    ambiguous_flat_error,
    extra_folders,
    matched_only_dropped,
    missing_error,
    missing_scored_as_zero,
    no_match_error,
    prediction_names,
    shifted_numbers,
    unknown_methods_error,
    unmatched_methods,
)
from vpscli.metrics.layout.discover import (
    PredListing,
    Split,
    folder_names,
    frame_number,
    has_frames,
    list_predictions,
    subdirs,
)

#: Optional level between a split and its cases in prediction trees (PNS-Net MATLAB layout).
PRED_FOLDER = "Pred"

#: (split name, method) -> case name -> prediction folder (None: no predictions for that case)
PredDirs = dict[tuple[str, str], dict[str, Path | None]]


def _case_folder(case: str, folders: dict[str, Path], use_masks: bool) -> Path | None:
    """The folder scored for ``case``: the ``probs/`` or ``masks/`` of a ``vps segment`` case folder
    (:meth:`RunFolder.scored_folder`: probabilities first, ``use_masks`` picks ``masks/``), else the folder."""
    folder = folders.get(case)
    if folder is None:
        return None
    return RunFolder(folder).scored_folder(use_masks) or folder


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
        children = {e.name: Path(e.path) for e in subdirs(candidate)}
        folders = {q.name: _case_folder(q.name, children, use_masks) for q in split.sequences}
        matched = sum(f is not None for f in folders.values())
        extra: list[str] = []
        flat = _flat_folder(candidate, use_masks) if matched == 0 and allow_flat else None
        if flat is not None:
            folders = _match_flat(flat, split)
            matched = sum(f is not None for f in folders.values())
        else:
            gt_cases = {q.name for q in split.sequences}
            extra = sorted((n for n in children if n not in gt_cases and n != PRED_FOLDER), key=natural_key)
        if matched > best[1]:
            best = (folders, matched, extra)
    return best


def _flat_folder(folder: Path, use_masks: bool) -> Path | None:
    """``folder`` when it holds prediction PNGs, else the ``probs/`` or ``masks/`` folder of a ``vps segment``
    case folder given directly; None when neither holds any."""
    if has_frames(folder, any_case=True):
        return folder
    sub = RunFolder(folder).scored_folder(use_masks)
    return sub if sub is not None and has_frames(sub, any_case=True) else None


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
                    raise ambiguous_flat_error(folder, n, seen[n], q.name)
                seen[n] = q.name
    hit_names = {q.name for q in hits}
    return {name: folder if name in hit_names else None for name in cases}


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
            extra += [f"{where(split.name)}{e}" for e in extra_here]
    return found, total, extra


def match_predictions(
    pred_root: Path, splits: list[Split], methods: list[str] | None, use_masks: bool, diagnostics: Diagnostics
) -> tuple[list[str], PredDirs]:
    """The methods and their prediction folders. Predictions without a method level (``PRED/[<split>/]<case>``,
    or one flat folder) are the one method ``.``, unless ``methods`` names method folders; otherwise each
    folder of ``pred_root`` is a method. Raises when nothing matches the GT cases."""
    flat, total, extra = _match_root(pred_root, splits, True, use_masks)
    if total and not methods:
        extra_folders(diagnostics, extra)
        return ["."], {(s, "."): f for s, f in flat.items()}
    candidates = folder_names(pred_root)
    if methods:
        unknown = [m for m in methods if m not in candidates]
        if unknown:  # with total: the folders are the GT's cases, there is no method level to choose from
            raise unknown_methods_error(pred_root, unknown, candidates, cases=bool(total))
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
    if method_names:
        unmatched_methods(diagnostics, unmatched)
    if not pred_dirs:
        raise _no_match(pred_root, splits)
    extra_folders(diagnostics, extra_cases)
    return method_names, pred_dirs


def _no_match(pred_root: Path, splits: list[Split]) -> InputError:
    """The error for predictions that match no GT case: both lists, and what to name the files."""
    gt_cases = [f"{where(s.name)}{q.name}" for s in splits for q in s.sequences]
    here = list_predictions(pred_root)
    methods = folder_names(pred_root)
    found = methods or sorted({*here.files.values(), *here.others.values()}, key=natural_key)
    return no_match_error(
        pred_root, gt_cases, found, not_png=bool(not here.files and here.others and not methods)
    )


def drop_unmatched(
    splits: list[Split], methods: list[str], pred_dirs: PredDirs, diagnostics: Diagnostics
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
            matched_only_dropped(diagnostics, split.name, dropped)
        kept.append(split)
    return kept


@dataclass
class FrameLookup:
    """What :func:`find_predictions` found for the evaluated frames."""

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


def find_predictions(splits: list[Split], methods: list[str], pred_dirs: PredDirs) -> FrameLookup:
    """Look up every evaluated frame's prediction file, for every method."""
    found = FrameLookup()
    for split in splits:
        for method in methods:
            folders = pred_dirs.get((split.name, method))
            if folders is None:
                continue
            prefix = ("" if method == "." else f"{method}/") + where(split.name)
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


def check_frames(
    splits: list[Split],
    methods: list[str],
    pred_dirs: PredDirs,
    pred_root: Path,
    allow_missing: bool,
    diagnostics: Diagnostics,
) -> tuple[list[Path], dict[Path, Path]]:
    """The evaluated frames without a prediction file, and the files that stand for a GT name under another
    name (``0001.PNG``, ``000001.png``). Raises on missing predictions unless ``allow_missing``, which scores
    them as all-zero maps with a warning."""
    found = find_predictions(splits, methods, pred_dirs)
    extra = sum(len(set(found.listing[f].files.values()) - used) for f, used in found.used.items())
    by_case = {gt: p for gt, p in found.renamed.items() if gt.name.lower() == p.name.lower()}
    by_number = {gt: p for gt, p in found.renamed.items() if gt not in by_case}
    prediction_names(diagnostics, extra, by_case, by_number)
    if found.n_missing and not allow_missing:
        raise missing_error(
            pred_root, found.n_missing, found.missing_cases, found.missing, found.shifted, found.other_ext
        )
    shifted_numbers(diagnostics, found.shifted)
    missing_scored_as_zero(diagnostics, found.missing)
    return found.missing, found.renamed
