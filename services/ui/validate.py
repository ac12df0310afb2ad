"""Checking an ``environment.yaml`` before it is submitted, with errors placed on their line.

The messages come from the same model the API validates with (``shared.spec``), so what the
editor reports is what a submission would be refused for; the YAML node tree maps each error's
location (``('dependencies', 2, …)``) back to a line of the text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from shared.runtime_settings import (
    SettingLevel,
    SettingsError,
    merge_settings,
    validate_setting_update,
)
from shared.spec import CondaSpecification, SpecificationError, normalize_specification


@dataclass
class Problem:
    line: int
    message: str


@dataclass
class Verdict:
    ok: bool
    problems: list[Problem]
    name: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "name": self.name, "errors": [asdict(p) for p in self.problems]}


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest node along ``loc``; line 1 when nothing matches."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _key_line(node: yaml.Node | None, key: str) -> int:
    return _line_of(node, (key,))


_UNION_LABELS = ("CondaSpecificationPip",)


def _is_label(part: Any) -> bool:
    """pydantic's union-branch names inside a location; they are not YAML keys."""
    return isinstance(part, str) and ("[" in part or part in _UNION_LABELS)


def _relevant(error: dict[str, Any]) -> bool:
    """Keep the union branch that matches what was written (a string, or a pip mapping)."""
    labels = [p for p in error["loc"] if _is_label(p)]
    if not labels:
        return True
    branch_is_pip = labels[0] in _UNION_LABELS
    if error["type"] in ("dict_type", "model_type", "string_type", "model_attributes_type"):
        return False
    return branch_is_pip or not isinstance(error.get("input"), dict)


def _describe(error: dict[str, Any]) -> str:
    """A short message: the field path (without pydantic's internal union labels) and why."""
    where = ".".join(str(p) for p in error["loc"] if not _is_label(p))
    value = error.get("input")
    if error["type"] == "missing":
        return f"'{where}' is required"
    if error["type"] == "string_pattern_mismatch" and where == "name":
        return f"invalid environment name {value!r}: use letters, digits and -+_@$&?^~.="
    msg = error["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _problems(errors: list[dict[str, Any]], root: yaml.Node | None) -> list[Problem]:
    """One problem per relevant error; a dependency only the union rejected gets one line."""
    seen: dict[tuple[Any, ...], bool] = {}
    problems = []
    for error in errors:
        loc = tuple(p for p in error["loc"] if not _is_label(p))
        if _relevant(error):
            seen[loc] = True
            problems.append(Problem(_line_of(root, loc), _describe(error)))
        else:
            seen.setdefault(loc[:2], False)
    for loc, reported in seen.items():
        if not reported and not any(k[: len(loc)] == loc and v for k, v in seen.items()):
            where = ".".join(str(p) for p in loc)
            message = f"{where}: expected a match spec string or a 'pip:' list"
            problems.append(Problem(_line_of(root, loc), message))
    return problems


def _yaml_problem(text: str) -> tuple[yaml.Node | None, Problem | None]:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        return None, Problem(line, f"Invalid YAML: {problem}")


def _settings_problem(
    spec: CondaSpecification, settings: dict[str, Any] | None, root: yaml.Node | None
) -> Problem | None:
    """Channel and required-package rules of the target namespace, as the API applies them."""
    if settings is None:
        return None
    try:
        normalize_specification(spec, merge_settings(None, settings))
    except SpecificationError as exc:
        key = "channels" if "channel" in exc.message.lower() else "dependencies"
        return Problem(_key_line(root, key), exc.message)
    except Exception:  # settings we cannot read must not block the editor
        return None
    return None


def check_specification(text: str, settings: dict[str, Any] | None = None) -> Verdict:
    """Validate an environment specification; ``settings`` are the namespace's, if readable."""
    if not text.strip():
        return Verdict(False, [Problem(1, "The specification is empty")])
    root, problem = _yaml_problem(text)
    if problem is not None:
        return Verdict(False, [problem])
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return Verdict(
            False, [Problem(1, "Expected a mapping with name, channels and dependencies")]
        )
    try:
        spec = CondaSpecification.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc.errors(), root)
        problems.sort(key=lambda p: p.line)
        name = data.get("name") if isinstance(data.get("name"), str) else None
        return Verdict(False, problems, name)
    extra = _settings_problem(spec, settings, root)
    return Verdict(extra is None, [extra] if extra else [], spec.name)


def check_lockfile(text: str, environment_name: str) -> Verdict:
    """Validate a conda-lock v1 lockfile submission (its errors rarely have a useful line)."""
    from shared.spec import parse_lockfile_submission

    root, problem = _yaml_problem(text)
    if problem is not None:
        return Verdict(False, [problem])
    if not environment_name:
        return Verdict(False, [Problem(1, "An environment name is required for a lockfile")])
    try:
        spec = parse_lockfile_submission(text, environment_name, "")
    except SpecificationError as exc:
        first = exc.message.splitlines()
        return Verdict(False, [Problem(1, " ".join(first[:3]))])
    return Verdict(True, [], spec.name)


def _reason(message: str) -> str:
    """What pydantic's error text says is wrong, without its type header and URL
    (``item 2: Input should be …`` for an entry of a list)."""
    lines = [line.strip() for line in message.splitlines()]
    if "validation error for" not in lines[0]:
        return message
    for i, line in enumerate(lines[1:], 1):
        if " [type=" in line:
            detail = line.split(" [type=", 1)[0]
            where = lines[i - 1]
            return f"item {int(where) + 1}: {detail}" if where.isdigit() else detail
    return message


def check_setting_values(level: SettingLevel, values: dict[str, Any]) -> dict[str, str]:
    """Each key's problem, with the API's own rules, so the settings form can show it on the
    field (the API names only the first problem, and not always its key)."""
    problems: dict[str, str] = {}
    for key, value in values.items():
        try:
            validate_setting_update(level, {key: value})
        except SettingsError as exc:
            problems[key] = _reason(exc.message)
    return problems
