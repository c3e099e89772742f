"""Shared Rich consoles and the error-reporting decorator of every command.

Messages and progress go to stderr; machine output (``--json`` to stdout) to stdout.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from typing import Callable, TypeVar

import typer
from rich.console import Console

from vpscli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, VpsError

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
    colour = {"warning": "yellow", "running": "cyan"}.get(label, "red")
    err_console.print(f"[bold {colour}]{label}:[/] ", end="")
    err_console.print(message, markup=False, soft_wrap=True)


def input_failure_line(error: BaseException) -> None:
    """One input of a batch failed: its one-line message (and, with ``--debug``, its traceback — the batch
    goes on, so the traceback is printed here rather than by :func:`reports_errors`)."""
    if _debug["on"] and error.__traceback__ is not None:
        from rich.traceback import Traceback

        err_console.print(Traceback.from_exception(type(error), error, error.__traceback__))
    error_line(error.one_line() if isinstance(error, VpsError) else f"{type(error).__name__}: {error}")


def running_line(message: str) -> None:
    """One line on stderr saying which model and weights run (:meth:`LoadedModel.describe`). Never
    silenced: a clinician must always be able to tell what produced the masks."""
    error_line(message, label="running")


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
        except KeyboardInterrupt as e:
            note = getattr(e, "vps_note", None)  # what the command kept, where it knows it
            err_console.print(
                "[red]interrupted[/] — " + ("finished outputs are kept" if note is None else ""),
                end="" if note else "\n",
            )
            if note:
                err_console.print(note, markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED) from None
        except Exception as e:  # a bug in vps, not a user error
            if _debug["on"]:
                err_console.print_exception()
            error_line(
                f"{type(e).__name__}: {e} — run again with --debug for the traceback and report it",
                label="internal error",
            )
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


def print_table(table, console: Console | None = None) -> None:
    """Print a Rich table so that no value is ever cut.

    On a terminal wide enough for the table's natural width, the Rich table is printed as is.
    Rich squeezes a table that is too wide by wrapping and cutting cells ("320x2…"), which loses
    values a user needs, so on a terminal that is too narrow — and whenever the output is not a
    terminal (pipe, file, CI log), where boxes and colour are noise to ``grep``/``cut`` — the table
    is printed as plain lines instead (:func:`plain_table_lines`).

    Args:
        table: a :class:`rich.table.Table`.
        console: where to print (default: :data:`out_console`, i.e. stdout).
    """
    from rich.measure import Measurement
    from rich.text import Text

    console = console or out_console
    if console.is_terminal:
        # the width the table needs to show every cell whole (the measure of an unconstrained console)
        needed = Measurement.get(console, console.options.update(max_width=1_000_000), table).maximum
        if needed <= console.width:
            console.print(table)
            return
    for line in plain_table_lines(table, console):
        # Text, not str: no markup, emoji codes or highlighting can alter a value; soft_wrap: never wrapped
        console.print(Text(line), soft_wrap=True, highlight=False)


def plain_table_lines(table, console: Console | None = None) -> list[str]:
    """A table as plain text lines: the title, a header line, then one line per row.

    Columns are padded to their widest value (right-aligned where the table right-aligns them) and
    separated by two spaces; no box drawing, colour codes or ellipsis, and no value is cut. Cell
    markup is read as the Rich table reads it (``[green]yes[/]`` → ``yes``); line breaks inside a
    cell become spaces, so each row stays one line.
    """
    from rich.cells import cell_len

    console = console or out_console
    columns = table.columns
    rows = [[_plain_cell(console, cell) for cell in column.cells] for column in columns]
    header = [_plain_cell(console, column.header) for column in columns]
    widths = [
        max([cell_len(v) for v in cells] + ([cell_len(h)] if table.show_header else [0]))
        for cells, h in zip(rows, header)
    ]

    def line(values: list[str]) -> str:
        parts = []
        for value, width, column in zip(values, widths, columns):
            pad = " " * (width - cell_len(value))
            parts.append(pad + value if column.justify == "right" else value + pad)
        return "  ".join(parts).rstrip()

    lines = []
    if table.title:
        lines.append(_plain_cell(console, table.title))
    if table.show_header:
        lines.append(line(header))
    lines.extend(line([cells[i] for cells in rows]) for i in range(table.row_count))
    if table.caption:
        lines.append(_plain_cell(console, table.caption))
    return lines


def _plain_cell(console: Console, cell) -> str:
    """The text a Rich table would show for ``cell``, on one line."""
    from rich.text import Text

    if cell is None:
        return ""
    if isinstance(cell, str):
        text = console.render_str(cell).plain  # markup and emoji as the Rich table renders them
    elif isinstance(cell, Text):
        text = cell.plain
    else:  # any other renderable: render it unconstrained and keep its characters
        options = console.options.update(max_width=1_000_000, width=1_000_000, no_wrap=True)
        text = "\n".join(
            "".join(seg.text for seg in line) for line in console.render_lines(cell, options, pad=False)
        )
    return " ".join(text.split("\n")).rstrip()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside the block, SIGTERM (``kill``, a scheduler's timeout, ``docker stop``) raises
    :class:`~vpscli.errors.Terminated`, a ``KeyboardInterrupt``: the run stops as on Ctrl-C —
    whole files kept, run.json saying ``interrupted`` — instead of dying mid-write."""

    def _raise(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (an embedding application): leave its handler alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
