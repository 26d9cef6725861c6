"""What makes two runs of a cached step the same: the step's identity and its inputs.

The identity is computed once per step in the driving process, where the user's source
files are (a worker on another machine may have the code only by value), and travels with
the plan; the key adds the inputs, computed where the step runs, from the values it
receives. See :mod:`runnable_dask.runtime.step_cache` for the whole design.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import marshal
import pickle
import types
from collections.abc import Callable
from typing import Any

import cloudpickle

from runnable_dask.runtime.binding import JSON_SCALARS, described
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import BaseTask, NotebookTask, PythonTask, ShellTask

KEY_VERSION = "runnable-dask-cache-3"
"""Part of every key: a change in what keys cover makes old entries unreachable."""


def step_identity(task: BaseTask, known: dict[Any, str] | None = None) -> str:
    """A digest of what the step is: its code and what it declares it returns and moves.

    A function's identity is its module, qualified name and source (plus, for a bound
    method, partial or closure, the values it carries); a notebook's, its code cells; a
    shell step's, its command. Secrets are names only, and not part of it. ``known``
    holds the identities of plain functions seen already in this plan (a thousand
    partials of one function: its source is described once).
    """
    parts = [KEY_VERSION, repr([(r.name, r.kind) for r in task.returns])]
    if task.catalog is not None:
        parts.append(repr(task.catalog.model_dump()))
    if isinstance(task, PythonTask):
        parts.extend(_callable_parts(task.function, 0, {} if known is None else known))
    elif isinstance(task, ShellTask):
        parts.append(task.command)
    elif isinstance(task, NotebookTask):
        parts.append(notebook_identity(task.notebook))
        parts.append(_canonical(task.optional_ploomber_args).decode("utf-8"))
    return _digest_parts(type(task).__name__, *parts)


def notebook_identity(path: str) -> str:
    """The notebook's code cells, in order: outputs, markdown and metadata do not count."""
    with open(path, encoding="utf-8") as handle:
        notebook = json.load(handle)
    cells = [
        "".join(cell.get("source", ""))
        for cell in notebook.get("cells", [])
        if cell.get("cell_type") == "code"
    ]
    return _digest(_canonical(cells))


def step_key(
    identity: str,
    task: BaseTask,
    params: dict[str, Param],
    gets: dict[str, str],
    map_lists: frozenset[str] = frozenset(),
) -> tuple[str, dict[str, str]]:
    """The cache key of one run of the step, and a short summary of its inputs.

    ``gets`` maps each catalog file the step gets to its content digest. A Python step
    reads the parameters its function binds (every one, with ``**kwargs``); shell and
    notebook steps see every parameter that is not pickled, so all of those count, but
    the lists of the maps around them (``map_lists``): their item counts instead.
    """
    names = read_names(task, params) if params else ()
    if names and not isinstance(task, PythonTask):
        names = [name for name in names if name not in map_lists]
    inputs = {name: value_digest(params[name]) for name in sorted(names)} if names else {}
    listed_gets = tuple(sorted(gets.items())) if gets else ()
    return _digest_parts(identity, tuple(inputs.items()), listed_gets), inputs


def read_names(task: BaseTask, params: dict[str, Param]) -> list[str]:
    """The parameters a run of ``task`` can read."""
    if isinstance(task, PythonTask):
        description = described(task.function)
        if description.takes_rest:
            return list(params)
        return [name for name in description.names if name in params]
    return [name for name, param in params.items() if param.kind != "object"]


def value_digest(param: Param) -> str:
    """A JSON value as canonical JSON text's digest; a pickled one by its pickle's (the
    digest it carries, if a cached step made it, see :func:`carrying_digest`)."""
    if param.kind == "object":
        return param.digest or f"object:{_digest(stable_pickle(param.value))}"
    return f"{param.kind}:{_digest(_canonical(param.value))}"


def carrying_digest(param: Param) -> Param:
    """A pickled value with its digest, made once by the step that returned it (a model
    read by twelve steps was pickled twelve times to key them)."""
    if param.kind != "object" or param.digest:
        return param
    return Param(kind=param.kind, value=param.value, digest=value_digest(param))


def listed_digest(params: list[Param]) -> str:
    """The digest of a Map's list of pickled values (its default reducer's), made of its
    items' digests when each carries one: the models of a sweep's fits are not pickled
    again, as one list, to key each step that reads the list; else ``""``."""
    digests = [p.digest for p in params if p.kind == "object"]
    if not digests or len(digests) < len(params) or not all(digests):
        return ""
    return f"object-list:{_digest_parts(*digests)}"


def stable_pickle(value: Any) -> bytes:
    """The pickle a value's content is compared by.

    Plain pickle refers to classes and functions by name, so the same content gives the
    same bytes from run to run. Where a name does not lead back to the class (its code
    came by value: a cluster whose workers run in another folder), :class:`_ByName`
    writes the same name, so a value's digest does not depend on how its code travelled;
    cloudpickle only for what has no name to write (lambdas, classes made in a function).
    Without memo ("fast" mode): a memo writes a string seen before as a reference, so
    whether two equal strings were one object (interned while a model was fitted, not
    after it was unpickled) changed the bytes. Cyclic values need the memo; they are
    pickled with it, and may then miss where they could hit.
    """
    for pickler in (pickle.Pickler, _ByName, cloudpickle.Pickler):
        buffer = io.BytesIO()
        unmemoised = pickler(buffer, protocol=4)
        unmemoised.fast = True
        try:
            unmemoised.dump(value)
            return buffer.getvalue()
        except Exception:
            continue
    return cloudpickle.dumps(value, protocol=4)


_PythonPickler: Any = pickle._Pickler  # typeshed leaves out the methods it is made of


class _ByName(_PythonPickler):  # the Python pickler: its C twin's naming is not open
    """Writes a class or function as its module and qualified name even where they do not
    import it: the bytes plain pickle writes where they do.

    A class shipped by value is a copy that its module's name does not reach (no such
    module on the worker, or another class under that name). cloudpickle pickled such
    a copy whole, with an id drawn by the process that shipped it: on a cluster of your
    own, a Map's items then had a new digest in every run, and adding one item to a
    sweep fitted every item again.
    """

    def save_global(self, obj: Any, name: str | None = None) -> None:
        try:
            super().save_global(obj, name)
            return
        except pickle.PicklingError:
            qualname = name or getattr(obj, "__qualname__", None) or obj.__name__
            module = getattr(obj, "__module__", None)
            if not module or "<" in qualname:  # a lambda or a local class: no name to write
                raise
        self.save(module)
        self.save(qualname)
        self.write(pickle.STACK_GLOBAL)


def _callable_identity(function: Callable[..., Any], depth: int, known: dict[Any, str]) -> str:
    if type(function) is types.FunctionType:  # the common case first
        found = known.get(function)
        if found is not None:
            return found
    if isinstance(function, functools.partial):
        return _digest_parts(*_callable_parts(function, depth, known))
    if inspect.ismethod(function):
        return _digest_parts(
            "method",
            _callable_identity(function.__func__, depth + 1, known),
            _carried(function.__self__, depth, known),
        )
    if not (inspect.isfunction(function) or inspect.isbuiltin(function)):
        call = type(function).__call__  # a callable object: its class's method, and itself
        return _digest_parts(
            "object",
            _carried(function, depth, known),
            _callable_identity(call, depth + 1, known),
        )
    if function not in known:
        known[function] = _function_identity(function, depth, known)
    return known[function]


def _callable_parts(function: Callable[..., Any], depth: int, known: dict[Any, str]) -> list[str]:
    """What identifies a callable, as texts to digest: a partial's function and the values
    it fixes, so that a step's identity digests them with the rest (a wide pipeline's
    thousand partials of one function: one digest each, not two); any other callable's
    identity."""
    if not isinstance(function, functools.partial):
        return [_callable_identity(function, depth, known)]
    parts = ["partial", _callable_identity(function.func, depth + 1, known)]
    parts += [_carried(value, depth, known) for value in function.args]
    if function.keywords:
        parts += [f"{k}={_carried(v, depth, known)}" for k, v in sorted(function.keywords.items())]
    return parts


def _function_identity(function: Any, depth: int, known: dict[Any, str]) -> str:
    name = f"{getattr(function, '__module__', None)}.{getattr(function, '__qualname__', '')}"
    code = getattr(function, "__code__", None)
    if code is None:  # a builtin: its name says what it is
        return _digest_parts("builtin", name)
    cells = function.__closure__ or ()
    return _digest_parts(
        "function",
        name,
        _source(function),
        _carried(function.__defaults__, depth, known),
        _carried(function.__kwdefaults__, depth, known),
        *(_carried(_cell(c), depth, known) for c in cells),
    )


@functools.lru_cache(maxsize=1024)
def _source_of(code: Any) -> str:
    try:
        return inspect.getsource(code)
    except (OSError, TypeError):  # defined where no source file is kept (``python -c``)
        return "bytecode:" + _digest(marshal.dumps(code))


def _source(function: Any) -> str:
    return _source_of(inspect.unwrap(function).__code__)


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell: the name is not bound yet
        return None


def _carried(value: Any, depth: int, known: dict[Any, str]) -> str:
    """A value a callable carries with it (bound ``self``, partial args, closure cells)."""
    if type(value) in JSON_SCALARS:
        return f"{type(value).__name__}:{value!r}"
    if callable(value) and not isinstance(value, type) and depth < 8:
        try:
            return _callable_identity(value, depth + 1, known)
        except Exception:
            pass
    try:
        return _digest(stable_pickle(value))
    except Exception:  # neither pickle takes it: its text is the best we have
        return repr(value)


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
)  # made once: ``json.dumps`` with options makes an encoder per call


def _canonical(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode("utf-8")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest_parts(*parts: str | tuple[tuple[str, str], ...]) -> str:
    """One digest of several texts (or tuples of pairs of texts): of their tuple's
    ``repr``, where each text is quoted and escaped, so no two sequences collide (and one
    string is encoded, in a third of the time of encoding and joining each part)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()
