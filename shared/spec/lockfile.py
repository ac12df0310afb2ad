"""Lockfile submissions (``POST /specification/`` with ``is_lockfile: true``).

The lockfile is validated with conda-lock's own v1 model, so whatever we accept
``conda-lock install`` accepts too. Unlike conda-store, which answers 500 for a lockfile whose
``version`` is not 1, we reject it with a 400-worthy :class:`SpecificationError`.
"""

from __future__ import annotations

from typing import Any

from conda_lock.lockfile.v1.models import Lockfile
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from shared.spec.errors import SpecificationError
from shared.spec.model import Description, EnvironmentName, check_specification_size, load_yaml

SUPPORTED_LOCKFILE_VERSION = 1


class LockfileSpecification(BaseModel):
    """A named environment defined by a conda-lock v1 unified lockfile.

    Its dump (what is stored and hashed) carries the lockfile in conda-lock's output form,
    with ``version: 1`` and unset/None fields left out, as conda-store stores it.
    """

    model_config = ConfigDict(from_attributes=True)
    name: EnvironmentName
    description: Description | None = ""
    lockfile: Lockfile
    _text: str | None = PrivateAttr(default=None)

    @property
    def submitted_text(self) -> str | None:
        """The text as submitted, kept when it is a complete lockfile (it has ``version: 1``)
        so it can be served back byte for byte; None when it needs its version added."""
        return self._text

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        data["lockfile"] = self.lockfile.dict_for_output()
        return data


def parse_lockfile_submission(
    text: str, environment_name: str | None, description: str | None
) -> LockfileSpecification:
    """Parse and validate a lockfile submission.

    Raises :class:`SpecificationError` with ``Unable to parse. Invalid YAML`` for bad YAML, an
    explicit message for an unsupported ``version``, and pydantic's text (as conda-store
    returns it, ``str(ValidationError)``) for anything else.
    """
    check_specification_size(text)
    lockfile = load_yaml(text)
    complete = isinstance(lockfile, dict) and "version" in lockfile
    if complete:
        version = lockfile["version"]
        if type(version) is not int or version != SUPPORTED_LOCKFILE_VERSION:
            raise SpecificationError(
                f"Unsupported lockfile version {version!r}: only conda-lock unified "
                f"lockfiles with version {SUPPORTED_LOCKFILE_VERSION} are accepted"
            )
    if lockfile is not None and not isinstance(lockfile, dict):
        raise SpecificationError(
            "Invalid lockfile: expected a conda-lock v1 unified lockfile mapping with "
            "'version', 'metadata' and 'package'"
        )
    if isinstance(lockfile, dict):
        # conda-store validates without the version key (conda-lock supplies it), so the
        # error texts below show the same input value as conda-store's.
        lockfile = {k: v for k, v in lockfile.items() if k != "version"}
    data = {"name": environment_name, "description": description, "lockfile": lockfile}
    try:
        spec = LockfileSpecification.model_validate(data)
    except ValidationError as exc:
        raise SpecificationError(str(exc)) from exc
    spec._text = text if complete else None
    return spec
