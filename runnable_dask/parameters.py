"""The run's initial parameters: the YAML parameters file, then ``RUNNABLE_PRM_<name>``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import yaml

from runnable_dask.exceptions import ConfigurationError
from runnable_dask.runtime.tokens import Param

ENV_PREFIX = "RUNNABLE_PRM_"


def load_parameters(
    parameters_file: str = "", environ: Mapping[str, str] | None = None
) -> dict[str, Param]:
    """Top-level keys of the file, overridden by the environment (which always wins).

    An environment value is JSON-decoded when it parses (``3``, ``[1, 2]``), else kept as
    the raw string; its name is lower-cased.
    """
    values: dict[str, Any] = _read_file(parameters_file) if parameters_file else {}
    environ = os.environ if environ is None else environ
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
            values[key[len(ENV_PREFIX) :].lower()] = _decode(raw)
    return {name: Param(kind="json", value=value) for name, value in values.items()}


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read parameters file {path!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"parameters file {path!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"parameters file {path!r} must map names to values at the top level "
            f"(name: value), got a {type(data).__name__}"
        )
    bad = [key for key in data if not (isinstance(key, str) and key.isidentifier())]
    if bad:
        raise ConfigurationError(
            f"parameters file {path!r}: names {bad} are not identifiers; functions receive "
            "parameters as arguments, so use letters, digits and _"
        )
    return data


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
