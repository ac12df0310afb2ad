"""docs/events.md documents every event type and every field of its payload."""

from __future__ import annotations

import re
from pathlib import Path

from shared.events import EventData

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^### (\w+)\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_event_and_field_is_documented() -> None:
    documented = sections()
    missing = []
    for name, cls in sorted(EventData.registry.items()):
        if name not in documented:
            missing.append(name)
            continue
        rows = set(re.findall(r"^\| `(\w+)` \|", documented[name], flags=re.MULTILINE))
        missing += [f"{name}.{field}" for field in cls.model_fields if field not in rows]
    assert missing == []
    assert "Packed" in documented and "schema version 2" in documented["Packed"].lower()
