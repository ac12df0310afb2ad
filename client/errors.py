"""The one error type the CLI reports: a single red line on stderr and exit code 1."""

from __future__ import annotations

import click


class CondaStoreError(click.ClickException):
    """Anything the user can act on (bad URI, HTTP error, failed build): never a traceback."""

    exit_code = 1

    def show(self, file=None) -> None:  # type: ignore[no-untyped-def, override]
        click.secho(f"Error: {self.format_message()}", err=True, fg="red")
