"""The ``vps`` command: a thin Typer layer that parses, calls the library, and reports.

Each subcommand lives in its own module under :mod:`vpscli.cli.commands` and exposes
``register(app)``; modules are discovered, so adding a command touches no other file.
Command modules import heavy libraries (torch, OpenCV) inside the command function so
that ``vps --help`` and ``vps --version`` stay instant.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
import sys
from typing import Optional

import typer

from vpscli import __version__
from vpscli.cli import commands as _commands
from vpscli.cli.console import set_debug
from vpscli.errors import EXIT_ERROR


def _flags_without_type() -> None:
    """Typer's Rich help prints ``<bool>`` in the type column of every flag (``--resume``, ``--help``), which
    reads as if the flag took a value: show nothing there for flags, as plain click help does."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_vps_flags", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    display_type_rich._vps_flags = True
    TyperOption.display_type_rich = display_type_rich


_flags_without_type()

app = typer.Typer(
    name="vps",
    help="Video polyp segmentation for colonoscopy videos: segment, evaluate, overlay.\n\n"
    "Exit codes: 0 success, 1 error, 2 usage error, 3 some inputs of a batch failed, 4 some inputs were "
    "partial (a truncated video), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"vps {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    """Options of ``vps`` itself (the app's help lists the exit codes)."""
    set_debug(debug)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{_commands.__name__}.{info.name}").register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vps`` console script; returns the exit code.

    Usage errors are Typer's (exit 2); errors inside commands are turned into one-line
    messages by :func:`vpscli.cli.console.reports_errors`.
    """
    try:
        app(args=argv, prog_name="vps")
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_ERROR)
    return 0


#: new container objects between two collections of the youngest generation in a ``vps`` process (Python's
#: default: 700)
GC_YOUNG_THRESHOLD = 10_000


def run() -> None:
    """Entry point of the ``vps`` console script and ``python -m vpscli``: :func:`main` as a process of its own.

    Two settings of the cyclic garbage collector that only a whole process may make (so not :func:`main`,
    which tests and other programs call in theirs). Importing torch and OpenVINO creates about 170,000
    container objects: with the default threshold the collector ran 389 times during the imports (0.18 s
    of start-up), with :data:`GC_YOUNG_THRESHOLD` 27 times (0.08 s). And at exit the interpreter's last
    collections walked every one of those objects (0.3 s after every command): the objects still alive
    when the command returns are frozen first, so they are not walked. Garbage is still collected while a
    command runs, a few thousand objects later than by default; memory stays flat with a video's length.
    """
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    code = main()
    gc.freeze()
    sys.exit(code)
