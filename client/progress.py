"""Rich progress bars on stderr, shown only when stderr is a terminal (scripts stay quiet)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)


def interactive() -> bool:
    return sys.stderr.isatty()


class Bar:
    """One task of a Progress (or a no-op when not interactive)."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self.progress = progress
        self.task = task

    def advance(self, amount: float) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, amount)

    def update(self, description: str | None = None, total: float | None = None) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=description, total=total)


@contextmanager
def bar(description: str, total: float | None = None, transfer: bool = False) -> Iterator[Bar]:
    """A transient bar: bytes with speed for ``transfer``, else a spinner with elapsed time."""
    if not interactive():
        yield Bar(None, None)
        return
    columns = (
        [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()]
        if transfer
        else [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield Bar(progress, progress.add_task(description, total=total))
