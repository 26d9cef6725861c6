"""Run a ``NotebookTask`` through papermill and read its returned names back.

A last cell, added to a private copy of the notebook, pickles the returned names into a
file; the executed notebook is stored in the catalog without that cell. papermill is
imported here, when a notebook step runs, so importing runnable_dask stays fast.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from contextlib import ExitStack
from typing import Any, TextIO

from runnable_dask.runtime.binding import to_param
from runnable_dask.runtime.deadline import notebook_options
from runnable_dask.runtime.notebook_checks import check_kernel
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
    with ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="runnable-dask-nb-"))
        returns_file = os.path.join(scratch, "returns.pickle")
        source = os.path.join(scratch, os.path.basename(task.notebook))
        executed = os.path.join(scratch, "executed.ipynb")
        notebook = nbformat.read(task.notebook, as_version=4)
        check_kernel(task, notebook)
        if names:
            cell = nbformat.v4.new_code_cell(_RETURNS_CELL.format(path=returns_file, names=names))
            cell.metadata["tags"] = [_RETURNS_TAG]
            notebook.cells.append(cell)
        nbformat.write(notebook, source)
        kernel_output = stack.enter_context(open(os.path.join(scratch, "kernel.log"), "w+"))
        options: dict[str, Any] = {
            "progress_bar": False,
            "log_output": False,
            "stdout_file": log,
            "stderr_file": log,
            "kernel_manager_class": _ipc_kernel_manager(scratch, kernel_output),
            "extra_arguments": ["--IPKernelApp.log_level=ERROR"],
            # The outputs are read by then; a graceful shutdown sometimes waits seconds.
            "shutdown_kernel": "immediate",
            **notebook_options(),  # the task's timeout, if any
            **task.optional_ploomber_args,
        }
        try:
            papermill.execute_notebook(source, executed, parameters=injected, **options)
        except PapermillExecutionError as exc:
            raise NotebookError(
                f"cell {exc.exec_count} of {task.notebook} raised {exc.ename}: {exc.evalue}"
            ) from None
        finally:
            kernel_output.seek(0)
            log.write(kernel_output.read())
            if os.path.exists(executed):
                _store_without_returns_cell(executed, catalog, task, internal_name)
        values = _read_returns(returns_file)
    missing = [name for name in names if name not in values]
    if missing:
        raise NotebookError(f"{task.notebook} never set {missing}; assign them in a cell")
    return {r.name: to_param(r, values[r.name]) for r in task.returns}


def _ipc_kernel_manager(folder: str, process_output: TextIO) -> type:
    """A kernel manager whose sockets are files in ``folder``, not TCP ports.

    Kernels started at the same moment in several processes race for free TCP ports
    ("ZMQError: Address already in use", jupyter/jupyter_client#154); a private folder
    per step cannot collide, and the kernel has no unencrypted TCP port to warn about.
    What the kernel process itself prints (not the cells' output) goes to
    ``process_output`` instead of the worker's terminal.
    """
    from jupyter_client import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(folder, "kernel")

        # jupyter_client types start_kernel as the sync manager's; this one is async.
        async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
            kwargs.setdefault("stdout", process_output)
            kwargs.setdefault("stderr", process_output)
            await super().start_kernel(**kwargs)

    return IpcKernelManager


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
