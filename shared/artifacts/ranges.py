"""Byte ranges with HTTP ``Range`` semantics (inclusive end), shared by every backend.

Both backends validate the same way so the API can turn ``RangeNotSatisfiable`` into a 416
whichever store is configured.
"""

from __future__ import annotations

from .base import RangeNotSatisfiable


def check_range(start: int | None, end: int | None, chunk_size: int) -> None:
    """Reject ranges no Range header could express, before any I/O.

    ``start=None`` means from the first byte (this API has no suffix ranges).
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if start is not None and start < 0:
        raise ValueError("range start must be >= 0")
    if end is not None and (end < 0 or end < (start or 0)):
        raise ValueError("range end must be >= start")


def is_ranged(start: int | None, end: int | None) -> bool:
    return start is not None or end is not None


def range_length(start: int | None, end: int | None, size: int) -> int:
    """Bytes to send for an inclusive range over an object of ``size`` bytes (end is clamped).

    Like HTTP's 416, a range starting at or past the end of the object is an error.
    """
    if not is_ranged(start, end):
        return size
    first = start or 0
    if first >= size:
        raise RangeNotSatisfiable(first, size)
    last = size - 1 if end is None else min(end, size - 1)
    return last - first + 1
