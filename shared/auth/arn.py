"""ARN globs: the ``<ns-glob>/<name-glob>`` keys of role bindings and how they match resources.

A resource ARN is ``"<namespace>/<environment>"``, a bare ``"<namespace>"``, or ``""`` for global
settings. A binding key ``ns/name`` matches ``^ns(?:/name)?$`` where ``*`` stands for any run of the
characters allowed in namespace and environment names. So ``default/*`` covers the namespace
``default`` itself, and ``""`` is only covered by keys whose namespace part is made of ``*`` alone
(e.g. ``*/*``).

Upstream pastes the glob into the regex unescaped, so ``.``, ``+``, ``?``, ``^`` and ``$`` in a key
act as regex operators there (``a.b/*`` also matches ``aXb``; ``?/*`` crashes). Here literal
characters are escaped, which only differs for such keys and never grants more than upstream's
intent.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Characters allowed in namespace and environment names (``schema.ALLOWED_CHARACTERS`` upstream).
ALLOWED_CHARACTERS = "A-Za-z0-9-+_@$&?^~.="
_NAME_CLASS = "[A-Za-z0-9+_@$&?^~.=-]"
_GLOB_CLASS = "[A-Za-z0-9+_@$&?^~.=*-]"
_KEY_RE = re.compile(rf"({_GLOB_CLASS}+)/({_GLOB_CLASS}+)")
_NAME_RE = re.compile(rf"{_NAME_CLASS}+")

GLOBAL_ARN = ""


class InvalidArnError(ValueError):
    """A role-binding key is not ``<ns-glob>/<name-glob>`` over the allowed characters."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"invalid arn={key}: role binding keys must look like '<namespace>/<name>' using only "
            f"[{ALLOWED_CHARACTERS}] and '*' wildcards"
        )
        self.key = key


def split_binding_key(key: str) -> tuple[str, str]:
    """Validate a binding key; return (namespace glob, name glob) or raise InvalidArnError."""
    match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise InvalidArnError(str(key))
    return match.group(1), match.group(2)


def validate_binding_key(key: str) -> str:
    """Return ``key`` unchanged if valid; usable as a pydantic/after-validator."""
    split_binding_key(key)
    return key


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a legal namespace/environment name (non-empty, allowed chars only)."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


def _glob_to_regex(glob: str, star: str) -> str:
    return star.join(re.escape(part) for part in glob.split("*"))


@lru_cache(maxsize=4096)
def compile_binding_key(key: str) -> re.Pattern[str]:
    """Regex matching every ARN that ``key`` covers (cached: keys repeat on every request)."""
    namespace, name = split_binding_key(key)
    star = f"{_NAME_CLASS}*"
    return re.compile(f"{_glob_to_regex(namespace, star)}(?:/{_glob_to_regex(name, star)})?")


def arn_matches(key: str, arn: str) -> bool:
    """Whether binding ``key`` covers resource ``arn`` (``ns/name``, bare ``ns``, or ``""``)."""
    return compile_binding_key(key).fullmatch(arn) is not None


@lru_cache(maxsize=4096)
def _superset_regex(key: str) -> re.Pattern[str]:
    split_binding_key(key)
    return re.compile(_glob_to_regex(key, f"{_GLOB_CLASS}*"))


def is_arn_subset(narrow: str, wide: str) -> bool:
    """Whether every ARN matched by key ``narrow`` is matched by key ``wide``.

    Token minting needs this to decide which of the caller's bindings can vouch for a requested
    binding: a ``*`` in ``wide`` may absorb any run of ``narrow`` including its own ``*`` (so
    ``a*/*`` covers ``ab*/c``).
    """
    split_binding_key(narrow)
    return _superset_regex(wide).fullmatch(narrow) is not None


def _like_escape(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def sql_like_patterns(key: str) -> tuple[str, str]:
    """(namespace, name) SQL ``LIKE`` patterns for a binding key, escape character backslash.

    Upstream does not escape ``_``, so ``my_ns/*`` also lists ``myXns``; escaping keeps lists
    consistent with the regex matcher. Backslash is PostgreSQL's default ``LIKE`` escape; pass
    ``ESCAPE '\\'`` elsewhere.
    """
    namespace, name = split_binding_key(key)
    return _like_escape(namespace), _like_escape(name)


def glob_matches_name(glob: str, name: str) -> bool:
    """Whether one glob part matches a concrete name; the in-memory twin of ``LIKE``."""
    return re.fullmatch(_glob_to_regex(glob, ".*"), name, flags=re.DOTALL) is not None
