"""The one error type of the spec package."""

from __future__ import annotations


class SpecificationError(ValueError):
    """A specification rejected with a user-facing message.

    ``message`` is the exact text the API answers with (``status``: 400, or 413 for a spec
    over the size limit), matching conda-store's wording wherever conda-store has one,
    because clients show it verbatim.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
