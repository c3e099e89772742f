"""The ``vps`` command: a thin Typer layer that parses, calls the library, and reports.

Each subcommand lives in its own module under :mod:`vpscli.cli.commands` and exposes
``register(app)``; modules are discovered, so adding a command touches no other file.
Command modules import heavy libraries (torch, OpenCV) inside the command function so
that ``vps --help`` and ``vps --version`` stay instant.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Optional

import click
import typer

from vpscli import __version__
from vpscli.cli import commands as _commands
from vpscli.cli.console import err_console
from vpscli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, VpsError

app = typer.Typer(
    name="vps",
    help="Video polyp segmentation for colonoscopy videos: segment, evaluate, overlay.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


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
    """Video polyp segmentation for colonoscopy videos.

    Exit codes: 0 success, 1 error, 2 usage error, 3 some inputs of a batch failed.
    """
    _state["debug"] = debug


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{_commands.__name__}.{info.name}").register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vps`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="vps", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:  # typer.Exit
        code = e.exit_code
    except click.exceptions.UsageError as e:
        e.show(file=sys.stderr)
        code = EXIT_USAGE
    except click.exceptions.Abort:
        err_console.print("[red]aborted[/]")
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/] — finished outputs are kept; run again with --resume to continue")
        code = EXIT_INTERRUPTED
    except VpsError as e:
        if debug:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {e.one_line()}", highlight=False, soft_wrap=True)
        code = e.exit_code
    except click.exceptions.ClickException as e:
        e.show(file=sys.stderr)
        code = e.exit_code
    except Exception as e:  # a bug in vps, not a user error
        if debug:
            err_console.print_exception()
        else:
            err_console.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {e} — "
                "run again with --debug for the traceback and report it",
                highlight=False,
                soft_wrap=True,
            )
        code = EXIT_ERROR
    return code


def run() -> None:  # pragma: no cover - used by ``python -m vpscli``
    sys.exit(main())
