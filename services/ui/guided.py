"""The guided editor's model of an ``environment.yaml``, and the YAML a person would write.

The create page offers form fields (channels, packages with a version constraint, pip
packages, variables, description) beside the YAML text. Both sides convert here, in one place,
so switching loses nothing: keys the form has no field for travel in ``extra``, and a package
row the user did not touch is written back exactly as it was read (``source``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from shared.spec.model import EnvironmentName, check_conda_dependency, check_pip_entry
from shared.wire import Int64

Op = Literal["any", "==", ">=", "<", "range", "custom"]
_KEY_ORDER = ("name", "description", "channels", "dependencies", "variables", "prefix")
_EDITED = frozenset({"name", "description", "channels", "dependencies", "variables"})
_NAME = re.compile(r"\s*((?:[^\s:]+::)?[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(.*?)\s*$")
_VERSION = r"[A-Za-z0-9_.+!]+"
_SIMPLE = {
    "==": re.compile(rf"==\s*({_VERSION})"),
    ">=": re.compile(rf">=\s*({_VERSION})"),
    "<": re.compile(rf"<\s*({_VERSION})"),
}
_RANGE = re.compile(rf">=\s*({_VERSION})\s*,\s*<\s*({_VERSION})")


class GuidedError(ValueError):
    """A text the guided editor cannot show; the message says why (the YAML editor still can)."""


class PackageRow(BaseModel):
    """One conda dependency as the form shows it: a name and a constraint picked from a list."""

    name: str = ""
    op: Op = "any"
    version: str = ""
    upper: str = Field(default="", description="The upper bound of a range (``<upper``).")
    constraint: str = Field(default="", description="Any other constraint, as written.")
    source: str | None = Field(default=None, description="The entry as it was read, if it was.")


class VariableRow(BaseModel):
    key: str = ""
    value: str = ""
    source: str | Int64 | None = Field(default=None, description="The value as it was read.")

    def written(self) -> str | int:
        """An untouched value keeps its type (``1`` stays a number)."""
        if self.source is not None and self.value == str(self.source):
            return self.source
        return self.value


class GuidedModel(BaseModel):
    name: str = ""
    description: str = ""
    channels: list[str] = Field(default_factory=list)
    packages: list[PackageRow] = Field(default_factory=list)
    pip: list[str] = Field(default_factory=list)
    variables: list[VariableRow] = Field(default_factory=list)
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Keys the form has no field for, kept as they were."
    )


class _PersonDumper(yaml.SafeDumper):
    """Lists indented under their key, as people write ``environment.yaml``."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def spec_to_yaml(spec: dict[str, Any]) -> str:
    """A specification as the YAML a person would have written (usual key order, empty
    values left out, lists indented under their key)."""
    ordered = {k: spec[k] for k in _KEY_ORDER if k in spec}
    ordered.update({k: v for k, v in spec.items() if k not in ordered})
    kept = {k: v for k, v in ordered.items() if v not in (None, "", [], {}) or k == "dependencies"}
    return yaml.dump(
        kept,
        Dumper=_PersonDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def parse_dependency(text: str) -> PackageRow:
    """A conda dependency as a form row; what the picker cannot express stays ``custom``."""
    match = _NAME.fullmatch(text)
    if match is None:
        return PackageRow(name=text.strip(), op="custom", source=text)
    name, rest = match.groups()
    row = PackageRow(name=name, source=text)
    if not rest:
        return row
    if found := _RANGE.fullmatch(rest):
        return row.model_copy(update={"op": "range", "version": found[1], "upper": found[2]})
    for op, pattern in _SIMPLE.items():
        if found := pattern.fullmatch(rest):
            return row.model_copy(update={"op": op, "version": found[1]})
    return row.model_copy(update={"op": "custom", "constraint": rest})


def dependency_text(row: PackageRow) -> str:
    """The entry for ``dependencies``; an untouched row is written back as it was read."""
    if row.source is not None and parse_dependency(row.source) == row:
        return row.source
    name = row.name.strip()
    version, upper = row.version.strip(), row.upper.strip()
    if row.op in ("==", ">=", "<") and version:
        return f"{name} {row.op}{version}"
    if row.op == "range" and version and upper:
        return f"{name} >={version},<{upper}"
    if row.op == "range" and (version or upper):
        return f"{name} >={version}" if version else f"{name} <{upper}"
    if row.op == "custom" and row.constraint.strip():
        constraint = row.constraint.strip()
        return f"{name}{'' if constraint[0] in '=<>!~[' else ' '}{constraint}"
    return name


def model_from_spec(data: Any) -> GuidedModel:
    """The form's model of a loaded ``environment.yaml``; GuidedError if it has a shape the
    form cannot show (the YAML editor keeps working on it)."""
    if not isinstance(data, dict):
        raise GuidedError("the text is not a mapping with name, channels and dependencies")
    channels = data.get("channels") or []
    dependencies = data.get("dependencies") or []
    variables = data.get("variables") or {}
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise GuidedError("channels must be a list of names or URLs")
    if not isinstance(dependencies, list):
        raise GuidedError("dependencies must be a list")
    if not isinstance(variables, dict) or not all(
        v is None or isinstance(v, str | int) for v in variables.values()
    ):
        raise GuidedError("variables must map names to text or numbers")
    packages: list[PackageRow] = []
    pip: list[str] = []
    pip_sections = 0
    for entry in dependencies:
        if isinstance(entry, str):
            packages.append(parse_dependency(entry))
        elif isinstance(entry, dict) and set(entry) == {"pip"} and isinstance(entry["pip"], list):
            pip_sections += 1
            pip += [str(p) for p in entry["pip"]]
        else:
            raise GuidedError(f"the dependency {entry!r} has no field in the guided editor")
    if pip_sections > 1:
        raise GuidedError("more than one pip section")
    return GuidedModel(
        name=str(data.get("name") or ""),
        description=str(data.get("description") or ""),
        channels=channels,
        packages=packages,
        pip=pip,
        variables=[
            VariableRow(key=str(k), value="" if v is None else str(v), source=v)
            for k, v in variables.items()
        ],
        extra={k: v for k, v in data.items() if k not in _EDITED},
    )


def spec_from_model(model: GuidedModel) -> dict[str, Any]:
    """The specification the form describes; blank rows are left out."""
    dependencies: list[Any] = [dependency_text(p) for p in model.packages if p.name.strip()]
    pip = [p.strip() for p in model.pip if p.strip()]
    if pip:
        dependencies.append({"pip": pip})
    spec: dict[str, Any] = {
        "name": model.name.strip(),
        "description": model.description,
        "channels": [c.strip() for c in model.channels if c.strip()],
        "dependencies": dependencies,
        "variables": {v.key.strip(): v.written() for v in model.variables if v.key.strip()},
    }
    spec.update(model.extra)
    return spec


def _first_error(check: Any, value: str) -> str | None:
    try:
        check(value)
    except ValueError as exc:
        return str(exc)
    return None


def field_errors(model: GuidedModel) -> dict[str, str]:
    """Problems placed on the form's fields (``name``, ``packages.<i>``, ``pip.<i>``), with
    the messages the API would give for them."""
    errors: dict[str, str] = {}
    try:
        TypeAdapter(EnvironmentName).validate_python(model.name.strip())
    except ValidationError:
        errors["name"] = (
            "a name is required: letters, digits and -+_@$&?^~.="
            if not model.name.strip()
            else f"invalid environment name {model.name.strip()!r}: use letters, digits and "
            "-+_@$&?^~.="
        )
    for i, row in enumerate(model.packages):
        if row.name.strip():
            message = _first_error(check_conda_dependency, dependency_text(row))
            if message:
                errors[f"packages.{i}"] = message
    for i, entry in enumerate(model.pip):
        if entry.strip():
            message = _first_error(check_pip_entry, entry.strip())
            if message:
                errors[f"pip.{i}"] = message
    return errors


def load_for_guided(text: str) -> GuidedModel:
    """The model of a YAML text; GuidedError for a text that is not YAML or not representable."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GuidedError(f"the YAML does not parse: {getattr(exc, 'problem', exc)}") from exc
    return model_from_spec(data)
