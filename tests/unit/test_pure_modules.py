"""The domain modules import no native library: rattler is asked through
``shared.conda_formats`` only, so specs and settings are validated without it loaded."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = sorted((ROOT / "shared" / "spec").glob("*.py")) + [ROOT / "shared" / "runtime_settings.py"]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_does_not_import_rattler(path: Path) -> None:
    assert "rattler" not in _imported(path)


def test_the_adapter_answers_as_rattler_does() -> None:
    import rattler

    from shared.conda_formats import conda_package_name, current_platform

    assert current_platform() == str(rattler.Subdir.current())
    assert conda_package_name("NumPy >=1.26") == "numpy"
    assert conda_package_name(">=1.0") is None
