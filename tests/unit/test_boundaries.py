"""Service boundaries, checked from the source: no service imports another, and every table
has one owner (the ``owner:`` comment at its ``CREATE``) that alone writes it; a private table
is read by its owner only, and the read model (the projector's) is read by anyone.

The check reads SQL out of string literals, so it sees every query written in the code; the
owners of code are its directories (``CODE_OWNERS``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"

CODE_OWNERS = {
    "eventstore": ("shared/eventstore/", "shared/buildlog.py"),
    "projector": ("shared/projections/", "services/projector/"),
    "solver": ("services/solver/",),
    "packer": ("services/packer/",),
    "webhooks": ("services/api/webhooks/",),
}
"""Who each owner is in the code; the event store's code also holds the build log store, and
the webhook dispatcher is the API process's package ``services/api/webhooks``."""

PUBLIC_OWNER = "projector"
"""The read model: its tables are the documented queries every service may read."""

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")
_OWNER = re.compile(r"^\s*(?:--|#)\s*owner:\s*(\w+)")
_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE|DROP\s+TABLE(?:\s+IF\s+EXISTS)?)\s+(\w+)",
    re.I,
)
_READ = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)")


def table_owners() -> dict[str, str]:
    """Every ``CREATE TABLE`` in the project's SQL and Python, with the owner named above it."""
    owners: dict[str, str] = {}
    files = [*(ROOT / "shared").rglob("*.sql"), *(ROOT / "shared").rglob("*.py")]
    files += list(SERVICES.rglob("*.py"))
    for path in files:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            for table in _CREATE.findall(line):
                above = [_OWNER.match(x) for x in lines[max(0, i - 2) : i]]
                named = [m.group(1) for m in above if m]
                assert named, f"{path.relative_to(ROOT)}: CREATE TABLE {table} names no owner"
                assert owners.get(table, named[-1]) == named[-1], f"{table} has two owners"
                owners[table] = named[-1]
    return owners


def python_files() -> Iterator[Path]:
    for base in ("services", "shared"):
        yield from sorted((ROOT / base).rglob("*.py"))


def owner_of_code(path: Path) -> str | None:
    rel = path.relative_to(ROOT).as_posix()
    for owner, prefixes in CODE_OWNERS.items():
        if any(rel == p or rel.startswith(p) for p in prefixes):
            return owner
    return None


def sql_literals(path: Path) -> Iterator[str]:
    """String constants of a module, with adjacent parts joined as Python joins them."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(v.value for v in node.values if isinstance(v, ast.Constant))


def test_every_table_has_one_owner() -> None:
    owners = table_owners()
    assert {"events", "builds", "solve_cache", "store_links"} <= owners.keys()  # it sees them
    assert set(owners.values()) <= set(CODE_OWNERS), owners


def test_tables_are_written_by_their_owner_and_private_ones_read_by_it_alone() -> None:
    owners = table_owners()
    wrong: list[str] = []
    for path in python_files():
        me = owner_of_code(path)
        for text in sql_literals(path):
            for table in _WRITE.findall(text):
                if table in owners and owners[table] != me:
                    wrong.append(f"{path.relative_to(ROOT)} writes {table} ({owners[table]}'s)")
            for table in _READ.findall(text):
                owner = owners.get(table)
                if owner is not None and owner not in (me, PUBLIC_OWNER):
                    wrong.append(f"{path.relative_to(ROOT)} reads {table} ({owner}'s)")
    assert wrong == []


def imported_modules(path: Path) -> Iterator[str]:
    """Absolute names of what a module imports (relative imports resolved)."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join((*base, node.module or ""))
            elif node.module:
                yield node.module


def test_no_service_imports_another() -> None:
    """Services talk through events; what they share lives in ``shared``. The top-level
    modules of ``services/`` (the CLI, the embedded supervisor) start services and may."""
    wrong = []
    for path in sorted(SERVICES.rglob("*.py")):
        parts = path.relative_to(SERVICES).parts
        if len(parts) == 1:
            continue
        for name in imported_modules(path):
            other = name.split(".")
            if other[0] == "services" and len(other) > 1 and other[1] != parts[0]:
                wrong.append(f"services/{'/'.join(parts)} imports {name}")
    assert wrong == []


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The regular expressions and the import resolution catch what they are for."""
    assert _WRITE.findall("INSERT INTO builds (id) VALUES ($1)") == ["builds"]
    assert _READ.findall("SELECT 1 FROM store_links l JOIN events e ON true") == [
        "store_links",
        "events",
    ]
    module = SERVICES / "api" / "routes" / "x.py"
    assert module.relative_to(ROOT).with_suffix("").parts[:-1] == ("services", "api", "routes")
