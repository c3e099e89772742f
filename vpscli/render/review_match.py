"""Masks matched to the frames of the video ``vps overlay`` draws them over, and checked: counts, sizes,
the damaged source's decodable prefix, and that a run's masks come from this video (see
:mod:`vpscli.render.review` for the rules)."""

from __future__ import annotations

from pathlib import Path

from vpscli.errors import InputError
from vpscli.io.run_folder import index_name
from vpscli.render.mask_set import MaskMatch, RunInfo, aspect_mismatch, match_masks


def _frame_names(source, n: int) -> list[str]:
    return list(source.frame_names) if hasattr(source, "frame_names") else [index_name(i) for i in range(n)]


def mismatch_fix(label: str, run: RunInfo | None) -> str:
    """What to do about a count mismatch: finish an unfinished segment run, else pick the right folder."""
    anyway = "or --allow-mismatch to draw missing masks as 'no mask'"
    if run is not None and run.status in ("running", "interrupted", "failed"):
        return f"the vps segment run that wrote {label} did not finish: complete it with --resume, {anyway}"
    return f"pass the {label} folder of this video, {anyway}"


def _check_counts(
    match: MaskMatch, n: int, label: str, allow: bool, warnings: list[str], run: RunInfo | None = None
) -> None:
    missing = match.missing
    if match.n_masks == n and not missing:
        return
    what = f"frame count mismatch: SOURCE has {n} frames, {label} has {match.n_masks} masks" + (
        f" ({len(missing)} frames have no mask)" if missing else ""
    )
    if not allow:
        raise InputError(what, path=match.folder, fix=mismatch_fix(label, run))
    warnings.append(
        f"{match.folder}: {what}; missing masks drawn as 'no mask'"
        + (", extra masks ignored" if match.n_masks > n else "")
    )


def _decodable_prefix(match: MaskMatch, packets: int) -> int:
    """For a damaged source: ``k`` when masks cover frames ``0..k-1`` and no later frame (what
    ``vps segment`` writes for a file that stops decoding at frame ``k``); else an error."""
    k = next((i for i, f in enumerate(match.files) if f is None), len(match.files))
    later = [i for i, f in enumerate(match.files) if f is not None and i > k]
    if k == 0 or later:
        what = f"MASKS has no mask for frame {k}" + (f" but has one for frame {later[0]}" if later else "")
        raise InputError(
            f"{what} (SOURCE is damaged: its {packets} packets may decode to fewer frames, so "
            "masks must cover frames 0, 1, 2 ... without a gap)",
            path=match.folder,
            fix="pass the MASKS folder of this video, or --allow-mismatch to draw missing masks as 'no mask'",
        )
    return k


def _check_size(match: MaskMatch, size: tuple[int, int], label: str, allow: bool) -> None:
    from vpscli.io.masks import read_mask

    first = next((f for f in match.files if f is not None), None)
    if first is None:
        return
    m = read_mask(first).array
    if aspect_mismatch((m.shape[1], m.shape[0]), size) and not allow:
        raise InputError(
            f"size mismatch: SOURCE frames are {size[0]}x{size[1]}, {label} masks are "
            f"{m.shape[1]}x{m.shape[0]} (another aspect ratio)",
            path=first,
            fix=f"pass the {label} folder of this video, or --allow-mismatch to resize them anyway",
        )


def match_inputs(src, probe, mask_dir: Path, gt, allow_mismatch: bool, run, warnings: list[str]):
    """``(n, pred_match, gt_match, damaged)``: the masks matched to the source's frames, counts and
    sizes checked (a damaged source: only the frames its masks cover up front; see the module doc)."""
    n, size = probe.frame_count, (probe.width, probe.height)
    names = _frame_names(src, n)
    pred_match = match_masks(mask_dir, names)
    damaged = getattr(probe, "damaged", False)
    gt_match = match_masks(gt, names) if gt is not None else None
    if damaged:
        if not allow_mismatch:
            n = _decodable_prefix(pred_match, probe.frame_count)
            names = names[:n]
            pred_match = match_masks(mask_dir, names)
            if gt is not None:
                gt_match = match_masks(gt, names)
                if gt_match.missing:
                    raise InputError(
                        f"GT has no mask for frame {gt_match.missing[0]}, and MASKS covers frames 0-{n - 1}",
                        path=gt_match.folder,
                        fix="pass the GT folder of this video, or --allow-mismatch to draw missing "
                        "masks as 'no mask'",
                    )
    else:
        _check_counts(pred_match, n, "MASKS", allow_mismatch, warnings, run)
        if gt_match is not None:
            _check_counts(gt_match, n, "GT", allow_mismatch, warnings)
    _check_size(pred_match, size, "MASKS", allow_mismatch)
    if gt_match is not None:
        _check_size(gt_match, size, "GT", allow_mismatch)
    return n, pred_match, gt_match, damaged


def check_same_source(src, run, masks: Path, allow: bool) -> None:
    """Masks of a ``vps segment`` run are drawn only over the video they were made from (its fingerprint
    in ``run.json``): another clip of the same length and size would take them silently."""
    from vpscli.io.fingerprint import source_fingerprint

    if run.source_fingerprint is None or allow:
        return
    try:
        same = source_fingerprint(src) == run.source_fingerprint
    except OSError:
        return  # unreadable here: decoding reports it
    if not same:
        raise InputError(
            f"these masks were made from another video ({run.source or 'see run.json'})",
            path=masks,
            fix="pass the video the run segmented, or --allow-mismatch to draw them anyway",
        )
