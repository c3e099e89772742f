"""What finding the ground truth and matching the predictions tell the user: the notes, warnings and errors.

Discovery and matching decide; these functions say what they decided and why, in plain words. Each note or
warning goes to a :class:`~vpscli.metrics.diagnostics.Diagnostics` under a stable code; each error is an
:class:`~vpscli.errors.InputError` for the caller to raise.
"""

from __future__ import annotations

from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.run_folder import MASKS, PROBS
from vpscli.metrics.diagnostics import Diagnostics, listed, where

#: What binary masks do to the threshold curves, said wherever masks are scored.
BINARY_MAPS = (
    "binary 0/255 maps give the same result at every threshold, so max and mean metrics "
    "(maxDice/meanDice, maxEm/meanEm …) nearly coincide and fall below what probability maps score"
)


# --- the ground truth --------------------------------------------------------------------------------------


def no_ground_truth_error(gt_root: Path, upper: bool) -> InputError:
    """Nothing under ``gt_root`` looks like GT; ``upper``: there are frames, but they end in ``.PNG``."""
    return InputError(
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


def no_case_error(gt_root: Path, upper: bool) -> InputError:
    """No split holds a case folder with frames; ``upper``: some hold ``.PNG`` files only."""
    return InputError(
        "no case folder with PNG frames found in the ground truth"
        + (
            " (its files end in .PNG; GT frames must end in lower-case .png, as the toolbox globs *.png)"
            if upper
            else ""
        ),
        path=gt_root,
        fix="rename the GT files to lower-case .png" if upper else None,
    )


def split_skipped(
    diagnostics: Diagnostics,
    split: str,
    cases_dir: Path,
    stray: list[str],
    empty: list[str],
    upper_case: dict[str, int],
    natural: list[str],
) -> None:
    """What reading a split's cases left out or did its own way: files beside the cases, case folders without
    frames, GT files ending in ``.PNG`` (per case), and cases sorted naturally as neither toolbox rule fits."""
    at = where(split)
    if stray:
        diagnostics.note(
            "gt-stray-files",
            f"{at}ignored {len(stray)} file(s) beside the case folders in {cases_dir} "
            f"(e.g. {stray[0]}); only folders are cases",
        )
    if empty:
        diagnostics.note(
            "gt-empty-case", f"{at}skipped {len(empty)} case folder(s) without PNG frames: {listed(empty)}"
        )
    if upper_case:
        diagnostics.note(
            "gt-upper-case-png",
            f"{at}ignored {sum(upper_case.values())} GT file(s) ending in .PNG (upper case) in "
            f"{listed(list(upper_case))}: GT frames are *.png, as the toolbox globs them — rename them to "
            ".png to score them",
        )
    if natural:
        diagnostics.note(
            "gt-natural-order",
            f"{at}{len(natural)} case(s) have names that fit neither toolbox sort rule (numeric, "
            f"SUN-SEG) and were sorted naturally: {listed(natural)}",
        )


def nothing_left_error(gt_root: Path) -> InputError:
    return InputError(
        "no GT case is left to evaluate", path=gt_root, fix="check --matched-only and the layout"
    )


def nothing_to_score_error(gt_root: Path, n_sequences: int) -> InputError:
    """Every sequence is too short for the protocol, which drops the first and last frame."""
    return InputError(
        f"nothing to score: all {n_sequences} sequence(s) have at most 2 frames, and the benchmark protocol "
        "drops the first and last frame of every sequence (the toolbox crashes here)",
        path=gt_root,
        fix="use --keep-ends to score every frame (not comparable with published tables), "
        "or evaluate longer sequences",
    )


# --- prediction folders ------------------------------------------------------------------------------------


def extra_folders(diagnostics: Diagnostics, extra: list[str]) -> None:
    """Prediction folders named like no GT case."""
    if extra:
        diagnostics.note(
            "pred-extra-folders",
            f"ignored {len(extra)} prediction folder(s) that are not GT cases: {listed(extra)}",
        )


def unmatched_methods(diagnostics: Diagnostics, unmatched: list[str]) -> None:
    """Folders beside the methods that hold no predictions for the GT cases."""
    if unmatched:
        diagnostics.note(
            "pred-unmatched-folders",
            f"ignored folder(s) without predictions for these GT cases: {listed(unmatched)}",
        )


def method_without_split(diagnostics: Diagnostics, split: str, method: str) -> None:
    diagnostics.note(
        "method-without-split", f"{where(split)}method {method} has no predictions for this split; skipped"
    )


def unknown_methods_error(
    pred_root: Path, unknown: list[str], candidates: list[str], cases: bool
) -> InputError:
    """``--method`` names folders that are not there; ``cases``: the folders here are GT cases, not methods."""
    if cases:
        return InputError(
            f"--method {', '.join(unknown)}: these predictions have no method folders (the "
            f"folders here are GT cases)",
            path=pred_root,
            fix="leave out --method, or give the folder that holds one folder per method",
        )
    return InputError(
        f"method folder(s) not found: {', '.join(unknown)}",
        path=pred_root,
        fix=f"choose among: {listed(candidates) or '(no folders)'}",
    )


def no_match_error(pred_root: Path, gt_cases: list[str], found: list[str], not_png: bool) -> InputError:
    """No prediction folder matches a GT case: both lists, and what to name the files (``not_png``: the files
    found are images of another format)."""
    return InputError(
        f"no prediction matches the ground-truth cases. GT cases: {listed(gt_cases)}. "
        f"Found in {pred_root}: {listed(found) or '(nothing)'}"
        + (" (not PNG files: only .png predictions are read)" if not_png else ""),
        path=pred_root,
        fix="predictions must be PRED/[<method>/][<split>/]<case>/<frame>.png with the GT file names"
        + (" (save the maps as PNG)" if not_png else ""),
    )


def ambiguous_flat_error(folder: Path, frame: str, case: str, other_case: str) -> InputError:
    return InputError(
        f"frame name {frame} occurs in GT cases {case} and {other_case}, so a flat folder of "
        "predictions cannot be matched by name",
        path=folder,
        fix="point GT at the matching case folder, or give predictions as PRED/<case>/<frame>.png",
    )


def scored_folders(diagnostics: Diagnostics, folders: list[Path], pred_root: Path) -> None:
    """Say which folder of ``vps segment`` case folders was scored, and what binary masks do to the metrics."""
    probs_over_masks = [f for f in folders if f.name == PROBS and (f.parent / MASKS).is_dir()]
    masks_only = [f for f in folders if f.name == MASKS and not (f.parent / PROBS).is_dir()]
    with_probs = [f for f in folders if f.name == MASKS and (f.parent / PROBS).is_dir()]
    given = [f for f in with_probs if f == pred_root]  # a masks/ folder named on the command line
    masks_chosen = [f for f in with_probs if f != pred_root]
    if probs_over_masks:
        diagnostics.note(
            "scored-probs",
            f"scored probs/ (probability maps, what the benchmark expects) of {len(probs_over_masks)} "
            f"vps segment folder(s) that also hold masks/, e.g. {probs_over_masks[0].parent}; "
            "--use-masks scores the thresholded masks/ instead",
        )
    if masks_chosen:
        diagnostics.note(
            "scored-masks",
            f"scored masks/ of {len(masks_chosen)} vps segment folder(s) (--use-masks), e.g. "
            f"{masks_chosen[0].parent}: {BINARY_MAPS}",
        )
    if given:
        diagnostics.note(
            "scored-masks-given",
            f"scored {given[0]} as given: {BINARY_MAPS}; the probs/ folder beside it holds the probability "
            f"maps the benchmark expects — pass {given[0].parent} to score them",
        )
    if masks_only:
        diagnostics.note(
            "scored-masks-only",
            f"scored masks/ of {len(masks_only)} folder(s) without probs/, e.g. {masks_only[0].parent}: vps "
            f"segment writes thresholded masks there; {BINARY_MAPS} — run vps segment with --save-prob for "
            "benchmark numbers (its probs/ are then scored)",
        )


def partial_run(diagnostics: Diagnostics, warning: str) -> None:
    """A ``vps segment`` run folder is partial or unfinished (said once per run folder)."""
    if warning not in diagnostics.warnings:
        diagnostics.warn("partial-run", warning)


def matched_only_dropped(diagnostics: Diagnostics, split: str, dropped: list[str]) -> None:
    diagnostics.note(
        "matched-only-dropped",
        f"{where(split)}left out {len(dropped)} GT case(s) without predictions "
        f"(--matched-only): {listed(dropped)}",
    )


# --- prediction files --------------------------------------------------------------------------------------


def prediction_names(
    diagnostics: Diagnostics, extra: int, by_case: dict[Path, Path], by_number: dict[Path, Path]
) -> None:
    """Prediction files that stand for no GT frame, and those scored under another name: ``by_case`` maps
    ``0001.png`` to ``0001.PNG``, ``by_number`` to ``000001.png``."""
    if extra:
        diagnostics.note("pred-extra-files", f"ignored {extra} prediction file(s) without a GT frame")
    if by_case:
        gt, p = next(iter(by_case.items()))
        diagnostics.note(
            "pred-extension-case",
            f"{len(by_case)} prediction file(s) differ from the GT name only in the extension's letter "
            f"case (e.g. {p.name} for {gt.name}) and are scored; the toolbox finds them only "
            "on case-insensitive file systems (macOS, Windows) — rename them to .png for a portable layout",
        )
    if by_number:
        gt, p = next(iter(by_number.items()))
        diagnostics.note(
            "pred-zero-padding",
            f"{len(by_number)} prediction file(s) carry the GT frame's number with other zero padding (e.g. "
            f"{p.name} for {gt.name}) and are scored as that frame; the toolbox matches exact names only — "
            "rename them for a portable layout",
        )


def shifted_numbers(diagnostics: Diagnostics, shifted: dict[Path, tuple[int, str, str]]) -> None:
    """Prediction folders numbered a constant off the GT, scored by their own numbers (``--allow-missing``)."""
    for folder, (shift, gt_name, pred_name) in shifted.items():
        diagnostics.note(
            "pred-shifted-numbers",
            f"the predictions in {folder} look numbered {shift:+d} from the ground truth ({pred_name} "
            f"where GT {gt_name} is expected): they were scored by their own numbers, not shifted",
        )


def missing_error(
    pred_root: Path,
    n_missing: int,
    missing_cases: list[str],
    missing: list[Path],
    shifted: dict[Path, tuple[int, str, str]],
    other_ext: list[str],
) -> InputError:
    """Predictions are missing: how many, the first ones, and the fix — the GT's numbers when the predictions
    are numbered a constant off them, PNG names when the files exist as ``.jpg``."""
    msg = f"{n_missing} prediction(s) missing"
    if missing_cases:
        msg += f"; GT cases without a prediction folder: {listed(missing_cases)}"
    if missing:
        msg += f"; first missing files: {', '.join(str(p) for p in missing[:5])}"
    fix = "add them, or use --allow-missing to score them as all-zero maps"
    if shifted:
        folder, (shift, gt_name, pred_name) = next(iter(shifted.items()))
        msg += (
            f"; the predictions in {folder} are numbered {abs(shift)} {'higher' if shift > 0 else 'lower'} "
            f"than the ground truth's frames ({pred_name} where GT {gt_name} is expected"
            f"{': frames extracted from 1, GT from 0?' if shift == 1 else ''}); vps does not guess an offset"
        )
        fix = (
            "segment the same frames the ground truth was drawn on, with their names, or rename the "
            "predictions to the GT's frame numbers if you know they match"
        )
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
        fix=fix + (", or --matched-only to leave out the cases without predictions" if missing_cases else ""),
    )


def missing_scored_as_zero(diagnostics: Diagnostics, missing: list[Path]) -> None:
    """``--allow-missing`` scored missing maps as empty: the scores are not the model's, said even under --quiet."""
    if missing:
        diagnostics.warn(
            "missing-prediction",
            f"{len(missing)} missing prediction(s) scored as all-zero maps (--allow-missing): every score "
            f"is lower than the predictions that exist would give, e.g. {missing[0]}",
        )
