"""docs/settings.md is generated from the one settings model and documents every variable the
code reads."""

from __future__ import annotations

import re
from pathlib import Path

from services.settings_doc import render
from shared.settings import GROUPS, Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "settings.md"
VARIABLE = re.compile(r"\bCONDA_STORE_[A-Z0-9_]*[A-Z0-9]\b")
NOT_VARIABLES = {"CONDA_STORE_EVENTS", "CONDA_STORE_SETTING"}
"""The stream's default name and the prefix of CONDA_STORE_SETTING_<KEY>."""


def test_the_page_is_what_the_models_say_now() -> None:
    assert PAGE.read_text() == render(), (
        "docs/settings.md is stale: run `conda-store-server settings-doc docs/settings.md`"
    )


def test_every_field_is_in_one_group_and_described() -> None:
    grouped = [name for group in GROUPS for name in group.model_fields]
    assert sorted(grouped) == sorted(Settings.model_fields)  # each once, none left out
    undescribed = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undescribed == []


def test_every_variable_the_code_names_is_documented() -> None:
    page = PAGE.read_text()
    named = {
        (path.relative_to(ROOT), name)
        for base in ("shared", "services", "client")
        for path in (ROOT / base).rglob("*.py")
        for name in VARIABLE.findall(path.read_text())
        if name not in NOT_VARIABLES
    }
    assert named, "the scan found nothing: the pattern is broken"
    missing = sorted(f"{path}: {name}" for path, name in named if f"`{name}`" not in page)
    assert missing == []
