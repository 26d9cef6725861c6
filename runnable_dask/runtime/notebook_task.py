"""Run a ``NotebookTask`` through papermill and read its returned names back.

A last cell, added to a private copy of the notebook, pickles the returned names into a
file; the executed notebook is stored in the catalog without that cell. papermill is
imported here, when a notebook step runs, so importing runnable_dask stays fast.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any, TextIO

from runnable_dask.runtime.binding import to_param
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import NotebookTask
from runnable_dask.stores.catalog import RunCatalog

_RETURNS_TAG = "runnable-dask-returns"
_RETURNS_CELL = """\
import pickle as _rd_pickle
with open({path!r}, "wb") as _rd_handle:
    _rd_values = {{_rd_n: globals()[_rd_n] for _rd_n in {names!r} if _rd_n in globals()}}
    _rd_pickle.dump(_rd_values, _rd_handle)
"""


class NotebookError(Exception):
    """A cell of the notebook raised, or a returned name was never set."""


def executed_notebook_name(task: NotebookTask, internal_name: str) -> str:
    """Where the executed notebook is kept in the run's catalog."""
    stem = os.path.splitext(os.path.basename(task.notebook))[0]
    return f"{stem}-{internal_name}_out.ipynb"


def run_notebook(
    task: NotebookTask,
    params: dict[str, Param],
    log: TextIO,
    catalog: RunCatalog,
    internal_name: str,
) -> dict[str, Param]:
    """Execute the notebook with the parameters injected; store it; return its values."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    if not os.path.exists(task.notebook):
        raise FileNotFoundError(
            f"notebook {task.notebook!r} does not exist (looked in {os.getcwd()}); "
            "give its path from the folder the pipeline runs in"
        )
    injected = {n: p.value for n, p in params.items() if p.kind != "object"}
    names = [r.name for r in task.returns]
    with tempfile.TemporaryDirectory(prefix="runnable-dask-nb-") as scratch:
        returns_file = os.path.join(scratch, "returns.pickle")
        source = os.path.join(scratch, os.path.basename(task.notebook))
        executed = os.path.join(scratch, "executed.ipynb")
        notebook = nbformat.read(task.notebook, as_version=4)
        if names:
            cell = nbformat.v4.new_code_cell(_RETURNS_CELL.format(path=returns_file, names=names))
            cell.metadata["tags"] = [_RETURNS_TAG]
            notebook.cells.append(cell)
        nbformat.write(notebook, source)
        options: dict[str, Any] = {
            "progress_bar": False,
            "log_output": False,
            "stdout_file": log,
            "stderr_file": log,
            # The kernel's own start-up warnings (TCP transport) are noise on every run.
            "extra_arguments": ["--IPKernelApp.log_level=ERROR"],
            **task.optional_ploomber_args,
        }
        try:
            papermill.execute_notebook(source, executed, parameters=injected, **options)
        except PapermillExecutionError as exc:
            raise NotebookError(
                f"cell {exc.exec_count} of {task.notebook} raised {exc.ename}: {exc.evalue}"
            ) from None
        finally:
            if os.path.exists(executed):
                _store_without_returns_cell(executed, catalog, task, internal_name)
        values = _read_returns(returns_file)
    missing = [name for name in names if name not in values]
    if missing:
        raise NotebookError(f"{task.notebook} never set {missing}; assign them in a cell")
    return {r.name: to_param(r, values[r.name]) for r in task.returns}


def _store_without_returns_cell(
    path: str, catalog: RunCatalog, task: NotebookTask, internal_name: str
) -> None:
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [
        c for c in notebook.cells if _RETURNS_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    nbformat.write(notebook, path)
    catalog.store_file(path, executed_notebook_name(task, internal_name))


def _read_returns(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as handle:
        return pickle.load(handle)
