"""Deploy-time defaults of the runtime settings (conda-store's traitlets in its config file).

An operator sets them without the API, before anyone logs in: a YAML or JSON file named by
``CONDA_STORE_SETTINGS_FILE`` (a mapping of setting keys to values), then one variable per key,
``CONDA_STORE_SETTING_<KEY>`` (upper case), which wins over the file. They sit between
conda-store's built-in defaults and the global layer set through ``PUT /api/v1/setting/``, and
the settings pages show them as the source "deployment".

A list is written as JSON (``'["conda-forge", "bioconda"]'``) or comma-separated
(``conda-forge,bioconda``). A bad key or value stops the service at start-up with the variable
or file named, rather than surfacing later as a confusing build failure.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shared.runtime_settings import (
    SETTING_KEYS,
    RuntimeSettings,
    SettingsError,
    validate_setting_update,
)

FILE_VARIABLE = "CONDA_STORE_SETTINGS_FILE"
KEY_PREFIX = "CONDA_STORE_SETTING_"


class DeploymentSettingsError(ValueError):
    """A deploy-time default that cannot be used; the message names where it was written."""


def variable_of(key: str) -> str:
    """The environment variable that sets ``key``'s deploy-time default."""
    return f"{KEY_PREFIX}{key.upper()}"


def _is_list(key: str) -> bool:
    return typing.get_origin(RuntimeSettings.model_fields[key].annotation) is list


def _parse_variable(key: str, text: str) -> Any:
    """A variable's text as the value it means: lists from JSON or commas, an empty value of a
    nullable key as None; everything else is left to the setting's own validation."""
    if _is_list(key):
        if text.lstrip().startswith("["):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise DeploymentSettingsError(
                    f"{variable_of(key)}: not a JSON list: {exc}"
                ) from exc
        return [item.strip() for item in text.split(",") if item.strip()]
    if text == "" and type(None) in typing.get_args(RuntimeSettings.model_fields[key].annotation):
        return None
    return text


def _from_file(path: Path) -> dict[str, Any]:
    where = f"{FILE_VARIABLE}={path}"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DeploymentSettingsError(f"{where}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise DeploymentSettingsError(f"{where}: not YAML or JSON: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DeploymentSettingsError(f"{where}: expected a mapping of setting keys to values")
    unknown = sorted(str(k) for k in data if k not in SETTING_KEYS)
    if unknown:
        raise DeploymentSettingsError(f"{where}: unknown setting keys {unknown}")
    return {key: _validated(key, value, where) for key, value in data.items()}


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(KEY_PREFIX):
            continue
        key = name.removeprefix(KEY_PREFIX).lower()
        if key not in SETTING_KEYS:
            raise DeploymentSettingsError(f"{name}: {key!r} is not a runtime setting")
        values[key] = _validated(key, _parse_variable(key, text), name)
    return values


def _validated(key: str, value: Any, where: str) -> Any:
    try:
        return validate_setting_update("global", {key: value})[key]
    except SettingsError as exc:
        raise DeploymentSettingsError(f"{where}: {key}: {exc.message}") from exc


def load_deployment_defaults(environ: Mapping[str, str]) -> dict[str, Any]:
    """The deploy-time defaults ``environ`` sets, validated, in JSON form (only the keys set).

    Raises :class:`DeploymentSettingsError` naming the file or variable at fault.
    """
    values: dict[str, Any] = {}
    path = environ.get(FILE_VARIABLE)
    if path:
        values.update(_from_file(Path(path)))
    values.update(_from_environ(environ))
    return values
