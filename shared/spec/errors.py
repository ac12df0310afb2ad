"""The one error type of the spec package."""

from __future__ import annotations


class SpecificationError(ValueError):
    """A specification rejected with a user-facing message.

    ``message`` is the exact text the API answers with (status 400), matching conda-store's
    wording wherever conda-store has one, because clients show it verbatim.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
