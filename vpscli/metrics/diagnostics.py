"""What an evaluation found that its user should know: one :class:`Diagnostic` per finding, in the order found.

Each step of ``vps evaluate`` (finding the ground truth, matching the predictions, scoring, the detection view)
adds its findings to a :class:`Diagnostics`, which the CLI prints. A note explains what vps did with an odd
input (a skipped file, a renamed prediction, a converted mask) and is silenced by ``--quiet``; a warning says
the scores do not cover the model's whole output (a partial ``vps segment`` run, missing maps scored as empty)
and is always shown. What stops the evaluation is raised as :class:`~vpscli.errors.InputError` instead.

Codes are stable identifiers (``gt-gap``, ``missing-prediction``; all in :data:`CODES`) to test and filter
on; the texts may change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

NOTE = "note"
WARNING = "warning"
#: How many names a message lists.
LIST_LIMIT = 8

#: Every code, and what it reports.
CODES = {
    # the ground truth
    "gt-stray-files": "files beside the case folders, skipped (only folders are cases)",
    "gt-empty-case": "case folders without PNG frames, skipped",
    "gt-upper-case-png": "GT files ending in .PNG, which are not frames (the toolbox globs *.png)",
    "gt-natural-order": "cases whose frame names fit neither toolbox sort rule, sorted naturally",
    # prediction folders
    "pred-extra-folders": "prediction folders named like no GT case, skipped",
    "pred-unmatched-folders": "folders beside the methods without predictions for the GT cases, skipped",
    "method-without-split": "a method without predictions for a split, skipped there",
    "scored-probs": "probs/ of vps segment folders scored rather than their masks/",
    "scored-masks": "masks/ of vps segment folders scored (--use-masks): binary maps",
    "scored-masks-given": "a masks/ folder given on the command line, scored as binary maps",
    "scored-masks-only": "masks/ of folders without probs/, scored as binary maps",
    "partial-run": "a vps segment run that is partial or unfinished",
    "matched-only-dropped": "GT cases without predictions, left out (--matched-only)",
    # prediction files
    "pred-extra-files": "prediction files that stand for no GT frame, skipped",
    "pred-extension-case": "predictions whose extension differs from the GT name's in letter case, scored",
    "pred-zero-padding": "predictions numbered like a GT frame under other zero padding, scored",
    "pred-shifted-numbers": "predictions numbered a constant off the GT, scored by their own numbers",
    "missing-prediction": "missing predictions scored as all-zero maps (--allow-missing)",
    # the scores
    "nan-scores": "frames whose scores are NaN",
    "empty-gt": "frames with an empty GT, where Dice/IoU/Sen/Spe are 0",
    "resized-predictions": "predictions resized to the GT size",
    "gt-conversion": "GT masks read with a conversion (palette, 0/1, 16-bit, RGB …)",
    "prediction-conversion": "predictions read with a conversion (palette, 0/1, 16-bit, RGB …)",
    "too-short-sequence": "sequences with no frame left after dropping the ends, left out of the means",
    # the detection view
    "detection-missing-prediction": "GT frames without a prediction, counted as not detected",
    "gt-gap": "gaps in a sequence's GT frame numbers, which episodes never span",
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding: its stable code, how loudly it is said (:data:`NOTE` or :data:`WARNING`), and its text."""

    code: str
    severity: str
    text: str


class Diagnostics:
    """The findings of one evaluation step, in the order found.

    ``on_warning`` is called with each warning's text as it is added: a warning is said at once, before an
    error that the same step may raise next.
    """

    def __init__(self, on_warning: Callable[[str], None] | None = None) -> None:
        self.entries: list[Diagnostic] = []
        self._on_warning = on_warning

    def note(self, code: str, text: str) -> None:
        self._add(Diagnostic(code, NOTE, text))

    def warn(self, code: str, text: str) -> None:
        self._add(Diagnostic(code, WARNING, text))
        if self._on_warning is not None:
            self._on_warning(text)

    def _add(self, diagnostic: Diagnostic) -> None:
        if diagnostic.code not in CODES:
            raise ValueError(f"unknown diagnostic code {diagnostic.code!r}: add it to CODES")
        self.entries.append(diagnostic)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.entries)

    def has(self, code: str) -> bool:
        return any(d.code == code for d in self.entries)

    @property
    def notes(self) -> list[str]:
        """The notes' texts, in order (the JSON's ``protocol.notes``)."""
        return [d.text for d in self.entries if d.severity == NOTE]

    @property
    def warnings(self) -> list[str]:
        """The warnings' texts, in order (the JSON's ``protocol.warnings``)."""
        return [d.text for d in self.entries if d.severity == WARNING]


def listed(names: Iterable[str], limit: int = LIST_LIMIT) -> str:
    """``a, b, c`` — the first ``limit`` names, then how many there are in all."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def where(split: str) -> str:
    """The prefix naming a split in a message (nothing for the single split ``.``)."""
    return "" if split == "." else f"{split}: "
