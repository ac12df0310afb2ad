"""A tiny builder for parameterized WHERE clauses (asyncpg ``$n`` placeholders)."""

from __future__ import annotations

from typing import Any


def like_escape(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally (backslash is Postgres' escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Where:
    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str, *values: Any) -> None:
        """``condition`` uses ``{}`` for each value, replaced by its placeholder."""
        self.conditions.append(condition.format(*(self.param(v) for v in values)))

    def visible(self, ns_col: str, name_col: str | None, patterns: tuple[list[str], list[str]]):
        """Rows matched by any role-binding pattern (roles ignored, as conda-store's lists)."""
        ns, names = patterns
        if any(a == "%" and b == "%" for a, b in zip(ns, names, strict=True)):
            return  # a */* binding sees everything: no filter, and the planner keeps its estimates
        if not ns:
            self.conditions.append("false")
            return
        alternatives = []
        for a, b in zip(ns, names, strict=True):
            clause = f"{ns_col} LIKE {self.param(a)}"
            if name_col is not None and b != "%":
                clause += f" AND {name_col} LIKE {self.param(b)}"
            alternatives.append(f"({clause})")
        # inline ORs, not a join against unnest(): planner estimates stay sane, no per-row scan
        self.conditions.append("(" + " OR ".join(alternatives) + ")")

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""
