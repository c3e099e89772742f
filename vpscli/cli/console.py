"""Shared Rich consoles: messages and progress go to stderr, machine output to stdout."""
from __future__ import annotations

from rich.console import Console

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)


def notice(message: str, quiet: bool = False) -> None:
    """A one-line notice on stderr (suppressed by ``--quiet``)."""
    if not quiet:
        err_console.print(f"[yellow]note:[/] {message}", soft_wrap=True)
