"""Load a pipeline file (``FILE.py`` or ``FILE.py:function``) and run it, as a user would.

``FILE.py`` is imported by path as a module named after the file (never as ``__main__``,
so its ``if __name__ == "__main__":`` block does not run) and its ``main()`` is called;
a file that defines no ``main`` runs as ``python FILE.py`` runs it, that block included.
``FILE.py:function`` calls ``function()``, which must return a ``Pipeline``; the CLI
runs it. Options reach a ``main()`` or a script that calls ``execute()`` itself through
the environment variables the driver reads.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from runnable_dask.cli.errors import UsageProblem
from runnable_dask.config import CONFIGURATION_ENV
from runnable_dask.exceptions import RunnableDaskError
from runnable_dask.sdk import Pipeline

MAIN = "main"


@dataclass(frozen=True, slots=True)
class Entry:
    """An absolute path to a pipeline file and, optionally, a function in it."""

    path: Path
    function: str = ""

    @classmethod
    def parse(cls, text: str) -> Entry:
        """``FILE.py`` or ``FILE.py:function``; the file must exist."""
        path, _, function = text.rpartition(":") if _has_function(text) else (text, "", "")
        resolved = Path(path).expanduser().resolve()
        if not resolved.is_file():
            raise UsageProblem(f"no such file: {path!r}")
        return cls(resolved, function)

    def __str__(self) -> str:
        """The form recorded in the run log and accepted back by :meth:`parse`."""
        return f"{self.path}:{self.function}" if self.function else str(self.path)

    @property
    def shown(self) -> str:
        return f"{self.path.name}:{self.function or MAIN}"


def _has_function(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    return bool(sep) and head.endswith(".py") and tail.isidentifier()


def call_entry(entry: Entry) -> Any:
    """Import the file and call ``entry``'s function (``main`` by default); its result."""
    return _call_user_code(entry, _callable(load_module(entry), entry))


def load_pipeline(entry: Entry) -> Pipeline:
    """Call ``entry``'s function and return the Pipeline it builds, without running it."""
    pipeline = call_entry(entry)
    if not isinstance(pipeline, Pipeline):
        raise UsageProblem(
            f"{entry.shown}() returned {type(pipeline).__name__}, expected a runnable_dask "
            "Pipeline; return the Pipeline without calling execute() on it"
        )
    return pipeline


def launch(
    entry: Entry,
    configuration_file: str = "",
    parameters_file: str = "",
    run_id: str = "",
    tag: str = "",
) -> None:
    """Run ``entry`` as ``execute`` and ``retry`` do; raise what the run raises.

    ``ExecutionFailedError`` propagates: the driver has printed the run's summary.
    """
    if tag and not entry.function:
        raise UsageProblem(
            "--tag needs FILE.py:function: main() calls execute() itself, so the tag "
            "cannot reach it; pass tag= to execute() in main() instead"
        )
    # The driver's names for them; imported here, as it brings in Dask (slow to import).
    from runnable_dask.claim import ENTRY_ENV
    from runnable_dask.driver import PARAMETERS_ENV
    from runnable_dask.run_id import RUN_ID_ENV

    settings = {
        ENTRY_ENV: str(entry),
        CONFIGURATION_ENV: os.path.abspath(configuration_file) if configuration_file else "",
        PARAMETERS_ENV: os.path.abspath(parameters_file) if parameters_file else "",
        RUN_ID_ENV: run_id,
    }
    with _environment(settings):
        if not entry.function:  # main(), or, if the file defines none, the file itself
            if _binds(entry.path, MAIN):
                call_entry(entry)
            else:
                _run_script(entry)
            return
        pipeline = load_pipeline(entry)
        pipeline.execute(
            configuration_file=configuration_file,
            parameters_file=parameters_file,
            run_id=run_id,
            tag=tag,
        )


def load_module(entry: Entry) -> ModuleType:
    """Import the file under its own name, its folder and the working folder first on the path.

    The working folder lets ``from examples.common.functions import ...`` work from the
    repository root; local worker processes inherit the path, so they import the file too.
    """
    _on_path(entry)
    name = entry.path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(entry.path):
        raise UsageProblem(
            f"{entry.path.name} has the name of the module {name!r} imported from "
            f"{getattr(existing, '__file__', 'built-in')}; rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, entry.path)
    if spec is None or spec.loader is None:
        raise UsageProblem(f"cannot import {entry.path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader = spec.loader
    try:
        _call_user_code(entry, lambda: loader.exec_module(module), doing=f"importing {name}")
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _on_path(entry: Entry) -> None:
    """The file's folder, then the working folder, first on the import path."""
    for folder in (os.getcwd(), str(entry.path.parent)):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)


def _run_script(entry: Entry) -> None:
    """Run the file as ``python FILE.py`` would, as ``__main__``: for a script with no
    ``main()``, whose run the summary tells its user to ``retry``."""
    _on_path(entry)
    path, doing = str(entry.path), f"running {entry.path.name}"
    _call_user_code(entry, lambda: runpy.run_path(path, run_name="__main__"), doing)


def _binds(path: Path, name: str) -> bool:
    """Whether the file may bind ``name`` when imported (a def, an assignment, an import,
    also inside a module-level ``if`` or ``try``; any ``import *``), read without running
    it: importing a script whose ``execute()`` is not under a ``__main__`` guard would
    run its pipeline. A file that does not parse says so when it is imported."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return True
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = [node.name]  # their bodies bind nothing in the module
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = [(a.asname or a.name).split(".")[0] for a in node.names]
            bound += [name for a in node.names if a.name == "*"]
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        else:
            blocks = (ast.stmt, ast.excepthandler, ast.match_case)
            pending.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, blocks))
            continue
        if name in bound:
            return True
    return False


def _callable(module: ModuleType, entry: Entry) -> Callable[[], Any]:
    name = entry.function or MAIN
    function = getattr(module, name, None)
    if not callable(function):
        found = sorted(
            n
            for n, v in vars(module).items()
            if inspect.isfunction(v) and v.__module__ == module.__name__ and n[0] != "_"
        )
        raise UsageProblem(
            f"{entry.path.name} has no function {name}(); "
            + (f"found: {', '.join(found)}" if found else "define one")
        )
    return function


def _call_user_code(entry: Entry, function: Callable[[], Any], doing: str = "") -> Any:
    """Run the user's code; its own errors become one line naming where they were raised."""
    try:
        return function()
    except (RunnableDaskError, click.ClickException):
        raise
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
        raise click.ClickException(
            f"{doing or entry.shown + '()'} raised {type(exc).__name__}: {exc}{where}"
        ) from exc


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the non-empty ``values`` for the run, then restore the environment as it was."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update({name: value for name, value in values.items() if value})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
