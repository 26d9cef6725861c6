"""A pickled parameter's readable form, for the run log and trackers.

A pickled value is recorded by name (it may be a model or a data frame); a structured
record, such as a map's item that is a dataclass or a pydantic model (the sweep's
``Configuration``), is small and says which item a branch ran. Its fields go into the
record's ``description`` as JSON, so an MLflow nested run can show them as params.
Anything else keeps the name only: rendering arbitrary objects (``repr`` of a data frame)
would cost every step that reads one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import BaseModel

FIELD_TEXT = 200
"""A field that is not plain JSON is shown as its ``repr``, cut to this many characters."""


def structured_fields(value: Any) -> dict[str, Any] | None:
    """A dataclass's, pydantic model's or named tuple's fields, shallow; None otherwise."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return dict(zip(value._fields, value, strict=True))
    return None


def describe(value: Any) -> str:
    """The fields of a structured value as JSON text; "" for any other value."""
    fields = structured_fields(value)
    if fields is None:
        return ""
    return json.dumps(fields, default=_field_text, sort_keys=False)


def _field_text(value: Any) -> Any:
    nested = structured_fields(value)
    if nested is not None:
        return nested
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)[:FIELD_TEXT]
