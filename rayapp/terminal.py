"""The terminal side of every command: consoles, the `key=value` overrides argument, error lines
and progress bars.

Stage and flow command modules import this, never `rayapp.cli` (which imports them). Results go to
stdout (`out`), everything a person reads while a command runs goes to stderr (`console`).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
# Piped into a log or CI the default 80 columns would cut tables: keep them whole.
out = Console(width=None if sys.stdout.isatty() else 160)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="configuration overrides (Hydra syntax), e.g. storage=minio log.level=DEBUG",
    )


def print_error(exc: BaseException | str) -> None:
    """One red `error:` line on stderr."""
    # soft_wrap: a long path in the message must stay on one line (people copy it, tools grep it)
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)


def progress(*, disable: bool = False) -> Progress:
    """The one progress-bar layout of every long command (stderr, cleared when done)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )
