"""Bind parameters to a Python function's arguments by name, and its results to returns."""

from __future__ import annotations

import copy
import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import Any, NamedTuple

from pydantic import BaseModel, TypeAdapter

from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import PythonTask, TaskReturn

_BUILTIN_CASTS = (int, float, str, list, dict, tuple, set)
JSON_SCALARS = frozenset({int, float, str, bool, type(None)})
"""Values a JSON round trip returns unchanged (the exact types: a subclass, such as an
enum, comes back as its base type), so a step returning one skips the trip."""


class BindingError(Exception):
    """A parameter is missing or cannot be read as its annotation says."""


class ReturnError(Exception):
    """A function's result does not match the task's ``returns``."""


def bind(function: Callable[..., Any], params: dict[str, Param]) -> dict[str, Any]:
    """Keyword arguments for ``function``: by name, cast by annotation, rest to ``**kwargs``."""
    signature, hints, _, takes_rest = described(function)
    arguments: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.kind in _NOT_BY_NAME:
            continue
        if parameter.name in params:
            param = params[parameter.name]
            value = _private_copy(param)
            if param.kind != "object":  # pickled values arrive as they were returned
                annotation = hints.get(parameter.name, parameter.annotation)
                value = _cast(parameter.name, value, annotation)
            arguments[parameter.name] = value
        elif parameter.default is inspect.Parameter.empty:
            known = ", ".join(sorted(params)) or "none"
            raise BindingError(
                f"argument {parameter.name!r} of {_name(function)} has no value: no earlier "
                f"step returned it and the parameters do not set it (known: {known}); "
                f"return it from an earlier step, set it in the parameters file, or give it "
                f"a default"
            )
    if takes_rest:
        for name, param in params.items():
            if name not in signature.parameters:
                arguments[name] = _private_copy(param)
    return arguments


def collect_returns(result: Any, task: PythonTask) -> dict[str, Param]:
    """Match ``result`` to the task's ``returns`` in order; JSON values are checked and
    copied."""
    returns = task.returns
    if not returns:
        return {}
    if len(returns) == 1:
        values: tuple[Any, ...] = (result,)
    elif isinstance(result, (tuple, list)) and len(result) == len(returns):
        values = tuple(result)
    else:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else "1 value"
        raise ReturnError(
            f"{task.who} declares {len(returns)} returns ({', '.join(r.name for r in returns)}) "
            f"but returned {got}; return a tuple with one value per name"
        )
    return {spec.name: to_param(spec, value) for spec, value in zip(returns, values, strict=True)}


def to_param(spec: TaskReturn, value: Any) -> Param:
    """Keep ``value`` as the return's kind says; JSON kinds are dumped and round-tripped."""
    if spec.kind == "object":
        return Param(kind="object", value=value)
    if type(value) in JSON_SCALARS:  # JSON gives them back as they are
        return Param(kind=spec.kind, value=value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        value = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ReturnError(
            f"return {spec.name!r} is {spec.kind}() but its value of type "
            f"{type(value).__name__} is not JSON-serialisable ({exc}); declare it "
            f"pickled({spec.name!r}) to keep any object"
        ) from exc
    return Param(kind=spec.kind, value=value)


def _private_copy(param: Param) -> Any:
    """JSON values are copied so sibling branches in one process never share them (a
    scalar cannot be changed in place: it is passed as it is)."""
    value = param.value
    if param.kind == "object" or type(value) in JSON_SCALARS:
        return value
    return copy.deepcopy(value)


def _cast(name: str, value: Any, annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    try:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation.model_validate(value)
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise BindingError(
                f"argument {name!r} = {value!r} is annotated int, and reading it as one would "
                f"cut it to {int(value)}; pass a whole number, or annotate it float"
            )
        if annotation in _BUILTIN_CASTS:
            return annotation(value)
        return _validator(annotation).validate_python(value)
    except BindingError:
        raise
    except Exception as exc:
        raise BindingError(
            f"argument {name!r} = {value!r} cannot be read as {_type_name(annotation)}: {exc}"
        ) from exc


def _validator(annotation: Any) -> TypeAdapter:
    try:
        return _cached_adapter(annotation)
    except TypeError:  # an unhashable annotation cannot be cached
        return TypeAdapter(annotation)


@functools.lru_cache(maxsize=256)
def _cached_adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation)


def callable_shape(function: Callable[..., Any]) -> Any:
    """What a callable's signature depends on, as a key: a partial's on its function and
    on how many positional and which keyword arguments it fixes (not their values), a
    bound method's on its function. Each step of a wide pipeline is often a partial of its
    own, and reading each one's signature took as long as the rest of binding."""
    if isinstance(function, functools.partial):
        return ("partial", function.func, len(function.args), tuple(sorted(function.keywords)))
    if inspect.ismethod(function):
        return ("method", function.__func__)
    return function


class Described(NamedTuple):
    """What binding needs to know of a function, read once per shape of function."""

    signature: inspect.Signature
    hints: dict[str, Any]
    names: tuple[str, ...]
    """The arguments bound by name (not ``*args`` or ``**kwargs``), in order."""
    takes_rest: bool
    """It takes ``**kwargs``: every other parameter is passed too."""


_NOT_BY_NAME = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_DESCRIPTIONS: dict[Any, Described] = {}
_DESCRIPTIONS_KEPT = 1024


def described(function: Callable[..., Any]) -> Described:
    """Signature, annotations and argument names, read once per shape of function (see
    :func:`callable_shape`). A partial's signature gives the arguments it fixes by keyword
    as defaults: binding asks only whether there is one, never which."""
    shape = callable_shape(function)
    try:
        found = _DESCRIPTIONS.get(shape)
    except TypeError:  # an unhashable callable: read each time
        return _description(function)
    if found is None:
        if len(_DESCRIPTIONS) >= _DESCRIPTIONS_KEPT:
            _DESCRIPTIONS.clear()
        found = _DESCRIPTIONS[shape] = _description(function)
    return found


def _description(function: Callable[..., Any]) -> Described:
    try:  # ``from __future__ import annotations`` leaves strings to resolve
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    signature = inspect.signature(function)
    parameters = signature.parameters.values()
    return Described(
        signature,
        hints,
        names=tuple(p.name for p in parameters if p.kind not in _NOT_BY_NAME),
        takes_rest=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters),
    )


def _name(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__qualname__', repr(function))}()"


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)
