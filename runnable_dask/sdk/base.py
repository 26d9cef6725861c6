"""The base of every SDK model: strict fields and one place that words definition errors.

A user who mistypes a field or passes a wrong value gets a :class:`PipelineDefinitionError`
naming the step, the field, the value received and what to do, instead of pydantic's
generic report.
"""

from __future__ import annotations

import difflib
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from runnable_dask.exceptions import PipelineDefinitionError

FORBIDDEN_NAME_CHARACTERS = (".", "%")
_LINE_BREAKING = ("Cc", "Zl", "Zp")
"""Control characters (newline, tab, escape) and line separators: never in a name."""


class SdkModel(BaseModel):
    """Pydantic base for what users write: unknown fields are refused, values are frozen.

    Each model's validator is built when it first validates (``defer_build``), not on
    import: a pipeline without a Map, Loop or Conditional never builds theirs, nor are the
    abstract bases built (see ``tests/test_import_cost.py``).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True
    )

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise PipelineDefinitionError(_describe(type(self), data, exc)) from None


def subject(kind: str, name: object) -> str:
    """How messages name a step: ``PythonTask 'train'``."""
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def check_name(value: str, what: str) -> str:
    """Refuse names that would break internal names such as ``step.branch.step``."""
    if not value:
        raise ValueError(f"{what} must not be empty; give it a short descriptive name")
    unprintable = sorted({c for c in value if unicodedata.category(c) in _LINE_BREAKING})
    if unprintable:
        shown = ", ".join(repr(c) for c in unprintable)
        suggestion = " ".join("".join(" " if c in unprintable else c for c in value).split())
        raise ValueError(
            f"{what} {value!r} contains {shown}, which would break the console's lines, the "
            f"run log's names and file names; use printable characters, e.g. {suggestion!r}"
        )
    bad = [c for c in FORBIDDEN_NAME_CHARACTERS if c in value]
    if bad:
        suggestion = value.replace(".", "_").replace("%", "_")
        raise ValueError(
            f"{what} {value!r} contains {' and '.join(repr(c) for c in bad)}, which internal "
            f"names use as separators; rename it, e.g. {suggestion!r}"
        )
    return value


def _describe(model: type[BaseModel], data: dict[str, Any], exc: ValidationError) -> list[str]:
    who = subject(model.__name__, data.get("name"))
    problems: list[str] = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, PipelineDefinitionError):
            problems.extend(cause.problems)
            continue
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            valid = sorted(model.model_fields)
            close = difflib.get_close_matches(str(error["loc"][0]), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{who}: unknown field {field!r}{hint} Valid fields: {', '.join(valid)}."
            )
            continue
        if error["type"] == "missing":
            problems.append(f"{who}: field {field!r} is required.")
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        received = error.get("input")
        shown = f" (got {received!r})" if error["type"] != "value_error" else ""
        problems.append(f"{who}: {field}: {message}{shown}" if field else f"{who}: {message}")
    return problems
