"""What the scores and the detection view tell the user beyond the tables: frames that give NaN or have an
empty GT, resized and converted inputs, sequences too short for the protocol, and detection frames without a
prediction or across gaps in the GT's numbering. Each is a note (:mod:`vpscli.metrics.diagnostics`)."""

from __future__ import annotations

from vpscli.metrics.detection import DatasetDetection
from vpscli.metrics.diagnostics import Diagnostics, listed, where
from vpscli.metrics.frame import conversion_note
from vpscli.metrics.keys import split_key
from vpscli.metrics.runner import EvaluationResult, FrameIssue

#: How many frame or sequence names a note about results lists.
NAMES_SHOWN = 3
#: How many gaps a note about one sequence's numbering lists.
GAPS_SHOWN = 4
#: Notes that never name the methods they hold for: a resize note names its method itself, and a GT file is
#: the same for every method.
UNNAMED_METHODS = ("resized-predictions", "gt-conversion")


def _diagnose_issue(issue: FrameIssue, method: str, keys: tuple[str, ...]) -> Diagnostics:
    """The notes about one (split, method)'s frames, not yet placed (no split or method named)."""
    notes = Diagnostics()
    if issue.nan:
        bad = sorted({k for _, ks in issue.nan for k in ks})
        affected = [k for k in keys if (split_key(k)[1] or k) in bad]
        if affected:
            why = " (Spe is 0/0 on a full-foreground GT)" if "Spe" in bad else ""
            notes.note(
                "nan-scores",
                f"{', '.join(affected)} = NaN: {len(issue.nan)} frame(s) give NaN{why}: "
                f"{listed((name for name, _ in issue.nan), NAMES_SHOWN)}",
            )
    if issue.empty_gt and any(split_key(k)[1] in ("Dice", "IoU", "Sen", "Spe") for k in keys):
        notes.note(
            "empty-gt",
            f"{len(issue.empty_gt)} frame(s) have an empty GT, where Dice/IoU/Sen/Spe are 0 at every "
            f"threshold (toolbox rule): {listed(issue.empty_gt, NAMES_SHOWN)}",
        )
    if issue.resized:
        who = "" if method == "." else f"{method}: "
        notes.note(
            "resized-predictions",
            f"{who}{issue.resized} prediction(s) resized to the GT size (bilinear, as the toolbox)",
        )
    for kind, n in issue.gt_kinds.items():
        notes.note("gt-conversion", conversion_note(kind, n, gt=True))
    for kind, n in issue.pred_kinds.items():
        notes.note("prediction-conversion", conversion_note(kind, n, gt=False))
    return notes


def diagnose_result(result: EvaluationResult) -> Diagnostics:
    """Notes about degenerate frames, converted or resized files and sequences left out of the means; a note
    that holds for every method of a split is given once, else it names the methods it holds for."""
    found: dict[tuple[str, str, str], list[str]] = {}  # (split, code, text) -> methods
    for (split, method), issue in result.issues.items():
        for note in _diagnose_issue(issue, method, result.metrics):
            found.setdefault((split, note.code, note.text), []).append(method)
    diagnostics = Diagnostics()
    for (split, code, text), methods in found.items():
        n_methods = sum(1 for s, _ in result.datasets if s == split)
        some = len(methods) < n_methods or (methods != ["."] and n_methods == 1)
        at = where(split) + (", ".join(methods) + ": " if some and code not in UNNAMED_METHODS else "")
        diagnostics.note(code, at + text)
    for (split, method), sequences in result.sequences.items():
        short = [s.name for s in sequences if s.n_frames == 0]
        if short and method == next(m for s, m in result.sequences if s == split):
            diagnostics.note(
                "too-short-sequence",
                f"{where(split)}{len(short)} sequence(s) have no frame left after dropping the first and last "
                f"(the toolbox crashes on them) and are left out of the means: {listed(short, NAMES_SHOWN)} "
                "— --keep-ends keeps all frames",
            )
    return diagnostics


def diagnose_detection(view: dict[tuple[str, str], DatasetDetection]) -> Diagnostics:
    """Frames of the detection view without a prediction (counted as not detected), and gaps in the GT's
    frame numbers (episodes are never counted across one)."""
    diagnostics = Diagnostics()
    for (split, method), dataset in view.items():
        at = where(split) + ("" if method == "." else f"{method}: ")
        missing = [s for s in dataset.sequences if s.missing]
        if missing:
            diagnostics.note(
                "detection-missing-prediction",
                f"{at}detection view: {sum(s.missing for s in missing)} GT frame(s) without a prediction "
                f"count as not detected: {listed((s.name for s in missing), NAMES_SHOWN)}",
            )
        for s in dataset.sequences:
            if s.gaps:
                shown = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in s.gaps[:GAPS_SHOWN])
                more = f" (+{len(s.gaps) - GAPS_SHOWN} more)" if len(s.gaps) > GAPS_SHOWN else ""
                diagnostics.note(
                    "gt-gap",
                    f"{at}{s.name}: GT frame numbers skip {shown}{more}; the detection view counts "
                    "episodes within each stretch of consecutive frames, never across a gap",
                )
    return diagnostics
