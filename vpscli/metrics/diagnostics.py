"""What an evaluation found that its user should know: one :class:`Diagnostic` per finding, in the order found.

Each step of ``vps evaluate`` (finding the ground truth, matching the predictions, scoring, the detection view)
adds its findings to a :class:`Diagnostics`, which the CLI prints. A note explains what vps did with an odd
input (a skipped file, a renamed prediction, a converted mask) and is silenced by ``--quiet``; a warning says
the scores do not cover the model's whole output (a partial ``vps segment`` run, missing maps scored as empty)
and is always shown. What stops the evaluation is raised as :class:`~vpscli.errors.InputError` instead.

Codes are stable identifiers (``gt-gap``, ``missing-prediction``) to test and filter on; the texts may change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

NOTE = "note"
WARNING = "warning"
#: How many names a message lists.
LIST_LIMIT = 8


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
        self.entries.append(Diagnostic(code, NOTE, text))

    def warn(self, code: str, text: str) -> None:
        self.entries.append(Diagnostic(code, WARNING, text))
        if self._on_warning is not None:
            self._on_warning(text)

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
