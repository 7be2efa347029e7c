"""Progress of a long command: a bar on a terminal, one plain line per step otherwise.

A bar redrawn in place is unreadable in a log file or a CI job, so output that is not a terminal
gets one line per finished step instead. Both go to stderr, leaving stdout for results.
"""

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], what: str, total: int | None = None, label=str, plain_lines: bool = True
) -> Iterator[T]:
    """Yield `items`, showing how far the command got (`label(item)` names each step); off a
    terminal, one line per step unless `plain_lines` is False (steps too quick to be worth a line)."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    if sys.stderr.isatty():
        # rich is a dependency of dagster and pyiceberg; imported only when a bar is drawn
        from rich.progress import track

        yield from track(items, description=what, total=total, console=_console())
        return
    if not plain_lines:
        yield from items
        return
    for number, item in enumerate(items, start=1):
        yield item
        sys.stderr.write(f"{what} [{number}/{total}] {label(item)}\n")
        sys.stderr.flush()


def _console():
    from rich.console import Console

    return Console(stderr=True)
