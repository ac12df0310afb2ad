"""The one error type the CLI reports: a single red line on stderr and exit code 1."""

from __future__ import annotations

from typing import IO, Any

import click


class CondaStoreError(click.ClickException):
    """Anything the user can act on (bad URI, HTTP error, failed build): never a traceback.

    The message is one red line. A multi-line server explanation (a solver's conflict tree)
    is split: its first line joins the red line, the rest follows uncoloured as ``detail``.
    """

    exit_code = 1

    def __init__(self, message: str, detail: str | None = None) -> None:
        first, _, rest = message.partition("\n")
        super().__init__(first)
        extra = [part for part in (rest.rstrip(), (detail or "").rstrip()) if part]
        self.detail = "\n".join(extra) or None

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(f"Error: {self.format_message()}", err=True, fg="red")
        if self.detail:
            click.echo(self.detail, err=True)
