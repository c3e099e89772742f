"""Shared Rich consoles and the error-reporting decorator of every command.

Messages and progress go to stderr; machine output (``--json`` to stdout) to stdout.
"""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

import typer
from rich.console import Console

from vpscli.errors import EXIT_ERROR, EXIT_INTERRUPTED, VpsError

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

_debug = {"on": False}
F = TypeVar("F", bound=Callable)


def set_debug(on: bool) -> None:
    _debug["on"] = on


def notice(message: str, quiet: bool = False) -> None:
    """A one-line notice on stderr (suppressed by ``--quiet``): information, never a loss of data."""
    if not quiet:
        err_console.print(f"[yellow]note:[/] {message}", soft_wrap=True)


def error_line(message: str, label: str = "error") -> None:
    """One unwrapped line on stderr: a red label, then ``message`` printed verbatim (no markup)."""
    colour = "yellow" if label == "warning" else "red"
    err_console.print(f"[bold {colour}]{label}:[/] ", end="")
    err_console.print(message, markup=False, soft_wrap=True)


def warning_line(message: str) -> None:
    """A one-line warning on stderr about lost, missing or partial data. Never silenced:
    ``--quiet`` hides progress and notes, not what a batch script must not miss."""
    error_line(message, label="warning")


def reports_errors(func: F) -> F:
    """Turn exceptions raised by a command into the project's one-line messages and exit codes.

    :class:`VpsError` → its message, exit code 1 (2 usage, 3 partial batch); Ctrl-C → 130;
    any other exception is a bug in vps → one line asking for ``--debug``, exit 1.
    ``--debug`` adds the traceback in every case.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except VpsError as e:
            if _debug["on"]:
                err_console.print_exception()
            error_line(e.one_line())
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/] — finished outputs are kept")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:  # a bug in vps, not a user error
            if _debug["on"]:
                err_console.print_exception()
            error_line(f"{type(e).__name__}: {e} — run again with --debug for the traceback and report it",
                       label="internal error")
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]
