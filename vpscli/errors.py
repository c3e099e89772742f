"""The project's error convention.

Every error a user can cause (bad input, bad option, missing file, full disk) is a
:class:`VpsError`: one line naming the file and the fix. The CLI turns it into a red
message and an exit code; Python callers catch it like any exception. Anything that is
not a ``VpsError`` is a bug in vps, shown with its traceback only under ``--debug``.
"""

from __future__ import annotations

from pathlib import Path

#: Exit codes of the ``vps`` command.
EXIT_OK = 0
EXIT_ERROR = 1  #: an input or runtime error
EXIT_USAGE = 2  #: bad command line (also Click's code)
EXIT_PARTIAL = 3  #: a batch finished but some of its inputs failed
#: every input was processed, but some were partial (a truncated video: only its decodable frames
#: have outputs; for ``vps probe``, damaged or truncated files); told apart from failure so that batch
#: scripts can decide what to do
EXIT_PARTIAL_INPUT = 4
EXIT_INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  #: SIGTERM (128 + SIGTERM), handled like Ctrl-C


class VpsError(Exception):
    """A user-facing error: what went wrong, with which file, and how to fix it.

    Args:
        message: what went wrong, without the file name.
        path: the file or folder concerned, if any.
        fix: what the user should do about it.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [f"{self.path}: {self.message}" if self.path else self.message]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " — ".join(parts)


class InputError(VpsError):
    """An input (video, frame folder, mask, checkpoint) cannot be used as given."""


class UsageError(VpsError):
    """Options that cannot work together, or a value outside what is accepted."""

    exit_code = EXIT_USAGE


class OutputError(VpsError):
    """An output cannot be written (disk full, permission, existing finished work)."""


class PartialFailure(VpsError):
    """A batch finished, but some inputs failed; ``failures`` maps input to its error."""

    exit_code = EXIT_PARTIAL

    def __init__(self, failures: dict[str, str], total: int):
        self.failures = dict(failures)
        self.total = total
        names = ", ".join(list(self.failures)[:3]) + (" ..." if len(self.failures) > 3 else "")
        super().__init__(
            f"{len(self.failures)} of {total} inputs failed: {names}",
            fix="see the errors above; fix those inputs and run again (finished ones are kept)",
        )


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a run exactly as Ctrl-C does."""
