"""Environment specifications, pure functions only: parsing and validation with conda-store's
error texts, normalization by runtime settings, the specification hash, build keys, dynamic
image names and the pinned-YAML artifact."""

from shared.spec.build_key import (
    DYNAMIC_CHANNELS,
    DYNAMIC_NAMESPACE,
    build_key_v1,
    build_key_v2,
    dynamic_image_spec,
    parse_build_key,
)
from shared.spec.errors import SpecificationError
from shared.spec.hashing import recursive_sort, specification_sha256
from shared.spec.model import (
    ALLOWED_PIP_OPTIONS,
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_LENGTH,
    MAX_SPECIFICATION_BYTES,
    NAME_PATTERN,
    CondaSpecification,
    CondaSpecificationPip,
    name_length_error,
    parse_specification,
    validate_specification,
)
from shared.spec.normalize import (
    NormalizedSpec,
    allowed_channel_urls,
    normalize_channel,
    normalize_specification,
)
from shared.spec.pinned import render_pinned_yaml

_LAZY = {"LockfileSpecification", "parse_lockfile_submission"}


def __getattr__(name: str) -> object:
    # conda-lock takes ~0.7 s to import; only lockfile submissions need it.
    if name in _LAZY:
        from shared.spec import lockfile

        return getattr(lockfile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALLOWED_PIP_OPTIONS",
    "DYNAMIC_CHANNELS",
    "DYNAMIC_NAMESPACE",
    "MAX_NAME_LENGTH",
    "MAX_DESCRIPTION_CHARS",
    "MAX_SPECIFICATION_BYTES",
    "NAME_PATTERN",
    "CondaSpecification",
    "CondaSpecificationPip",
    "LockfileSpecification",
    "NormalizedSpec",
    "SpecificationError",
    "build_key_v1",
    "build_key_v2",
    "dynamic_image_spec",
    "name_length_error",
    "allowed_channel_urls",
    "normalize_channel",
    "normalize_specification",
    "parse_build_key",
    "parse_lockfile_submission",
    "parse_specification",
    "recursive_sort",
    "render_pinned_yaml",
    "specification_sha256",
    "validate_specification",
]
