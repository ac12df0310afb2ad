"""What a request may carry into the system: integers Postgres can hold, text Postgres can store.

Postgres has no integer past 64 bits and no text with a NUL character (nor can UTF-8 carry an
unpaired surrogate). Values like these are refused at the edge with a 4xx, instead of reaching
a query and coming back as a 500. ``Int64`` bounds every integer a route accepts (FastAPI then
answers 422 naming the parameter); ``text_problem`` and ``find_bad_text`` name the text that
cannot be stored, for the HTTP edge guard and the token model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Ge, Le

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
"""An integer a bigint column or parameter can hold."""


def is_row_id(value: object) -> bool:
    """Whether ``value`` can be a read-model id (an ``integer`` column, 32 bits): anything
    else names no row, and must not reach a query that would fail to encode it."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


NUL_NOT_ALLOWED = "NUL characters are not allowed"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return NUL_NOT_ALLOWED
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "unpaired surrogates are not allowed"
    return None


def find_bad_text(value: Any, where: str = "") -> tuple[str, str] | None:
    """(location, problem) of the first string or key in a JSON value that cannot be stored.

    The location is a dotted path (``metadata.owner``, ``role_bindings[0]``) so the error
    message can name the field.
    """
    if isinstance(value, str):
        problem = text_problem(value)
        return (where or "value", problem) if problem else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            problem = text_problem(str(key))
            if problem:
                return (f"{where + '.' if where else ''}<key {key!r}>", problem)
            found = find_bad_text(item, inner)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_bad_text(item, f"{where}[{index}]")
            if found:
                return found
    return None
