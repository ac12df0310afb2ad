"""The ``environment.yaml`` model as conda-store validates it, and its text parser.

The model's shape (class names, the union of an after-validated ``str`` with
``CondaSpecificationPip``, the ``lambda`` validators, ``from_attributes``) is chosen so that
pydantic's error messages and locations are byte-identical to conda-store 2025.2.2's, e.g.
``loc=('dependencies', 0, 'function-after[<lambda>(), str]')``: they are part of the API.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError

from shared.conda_formats import conda_package_name
from shared.spec.errors import SpecificationError

ALLOWED_CHARACTERS = "A-Za-z0-9-+_@$&?^~.="
NAME_PATTERN = f"^[{ALLOWED_CHARACTERS}]+$"
ALLOWED_PIP_OPTIONS = ["--index-url", "--extra-index-url", "--trusted-host"]
INVALID_YAML = "Unable to parse. Invalid YAML"

EnvironmentName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
MAX_NAME_LENGTH = 255


def name_length_error(kind: str, name: str) -> str | None:
    """Why ``name`` is too long to be a namespace or environment name, or None.

    conda-store keeps names in 255-character columns; a longer one would fail deep inside
    (a database error, or a notification payload over Postgres's limit), so it is refused
    up front with a message that names the rule, not the (possibly huge) name.
    """
    if len(name) <= MAX_NAME_LENGTH:
        return None
    return (
        f"{kind} name is too long ({len(name)} characters): "
        f"at most {MAX_NAME_LENGTH} characters are allowed"
    )


MAX_SPECIFICATION_BYTES = 512 * 1024
"""The largest specification or lockfile text accepted. It is stored inside one event, and
every event travels as one NATS message (1 MiB by default)."""
MAX_DESCRIPTION_CHARS = 16 * 1024
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_CHARS)]


def check_specification_size(text: str) -> None:
    """413 for a specification text over ``MAX_SPECIFICATION_BYTES``, before parsing it."""
    size = len(text.encode())
    if size > MAX_SPECIFICATION_BYTES:
        raise SpecificationError(
            f"the specification is {size} bytes; the limit is {MAX_SPECIFICATION_BYTES} bytes",
            status=413,
        )


def check_pip_entry(value: str) -> str:
    """Accept a PEP 508 requirement or one of the allowed pip index options."""
    if value.startswith("--"):
        match = re.fullmatch(r"(.+?)[ =](.*)", value)
        if match is None or match.group(1) not in ALLOWED_PIP_OPTIONS:
            raise ValueError(
                f"Invalid pip option '{value}' supported options are {ALLOWED_PIP_OPTIONS}"
            )
        return value
    if pip_requirement_name(value) is None:
        raise ValueError(
            f'Invalid pypi package dependency "{value}" ensure it follows peps '
            "https://peps.python.org/pep-0508/ and https://peps.python.org/pep-0440/"
        )
    return value


def check_conda_dependency(value: str) -> str:
    """Accept any string rattler parses as a conda MatchSpec."""
    if conda_package_name(value) is None:
        raise ValueError(f"Invalid conda package dependency specification {value}")
    return value


def pip_requirement_name(requirement: str) -> str | None:
    """The project name of a PEP 508 requirement as written, or None if it does not parse."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(requirement).name
    except InvalidRequirement:
        return None


# The lambdas are intentional: their name is rendered into error locations.
PipArg = Annotated[str, AfterValidator(lambda v: check_pip_entry(v))]
CondaDep = Annotated[str, AfterValidator(lambda v: check_conda_dependency(v))]


class CondaSpecificationPip(BaseModel):
    """The ``{"pip": [...]}`` entry of ``dependencies``."""

    model_config = ConfigDict(from_attributes=True)
    pip: list[PipArg] = []


class CondaSpecification(BaseModel):
    """An environment specification (``environment.yaml``), as stored and hashed."""

    model_config = ConfigDict(from_attributes=True)
    channels: list[str] = []
    dependencies: list[CondaDep | CondaSpecificationPip] = []
    description: Description | None = ""
    name: EnvironmentName
    prefix: str | None = None
    variables: dict[str, str | int] | None = None

    def conda_dependencies(self) -> list[str]:
        """The conda MatchSpec strings, in order."""
        return [d for d in self.dependencies if isinstance(d, str)]

    def pip_dependencies(self) -> list[str]:
        """The entries of the first pip section (the one conda-store reads and extends)."""
        for dep in self.dependencies:
            if isinstance(dep, CondaSpecificationPip):
                return dep.pip
        return []


def format_validation_error(exc: ValidationError) -> str:
    """conda-store's rendering: one ``<msg> (type=<type>, loc=<loc tuple>)`` per line."""
    return "\n".join(f"{err['msg']} (type={err['type']}, loc={err['loc']})" for err in exc.errors())


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` (JSON is a subset), mapping any YAML error to conda-store's text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecificationError(INVALID_YAML) from exc


def validate_specification(data: Any) -> CondaSpecification:
    """Validate already-loaded data; errors carry conda-store's joined pydantic text."""
    try:
        return CondaSpecification.model_validate(data)
    except ValidationError as exc:
        raise SpecificationError(format_validation_error(exc)) from exc


def parse_specification(text: str) -> CondaSpecification:
    """Parse ``POST /specification/``'s ``specification`` text (YAML or JSON).

    As in conda-store, a document that is valid YAML but not a mapping (empty text, a list, a
    scalar) is a validation error, not "Invalid YAML".
    """
    check_specification_size(text)
    return validate_specification(load_yaml(text))
