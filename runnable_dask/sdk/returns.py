"""Markers that say how a task's returned values are kept: ``json``, ``pickled``, ``metric``."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from runnable_dask.sdk.base import SdkModel

ReturnKind = Literal["json", "object", "metric"]


class TaskReturn(SdkModel):
    """One named value a task hands to later steps.

    ``kind`` is ``json`` (JSON-serialisable), ``object`` (any picklable object) or
    ``metric`` (a JSON value that is also recorded as a metric of the attempt).
    """

    name: str
    kind: ReturnKind = "json"

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(
                f"return name {value!r} is not a valid identifier; later steps receive it as "
                "a function argument or an environment variable, so use letters, digits and _"
            )
        return value


def json(name: str) -> TaskReturn:
    """A JSON-serialisable return value (a bare string in ``returns`` means the same)."""
    return TaskReturn(name=name, kind="json")


def pickled(name: str) -> TaskReturn:
    """A return value of any picklable type (a model, a DataFrame)."""
    return TaskReturn(name=name, kind="object")


def metric(name: str) -> TaskReturn:
    """A JSON return value that is also recorded as a metric of the attempt."""
    return TaskReturn(name=name, kind="metric")
