"""Run a ``NotebookTask`` through papermill and read its returned names back.

A last cell, added to a private copy of the notebook, pickles the returned names into a
file; the executed notebook is stored in the catalog without that cell. The kernel comes
from this process's pool of warm kernels (:mod:`runnable_dask.runtime.kernel_pool`),
handed to papermill as ``km``: nbclient starts a kernel only when the manager it is given
has none, and leaves a manager it was given running, so the pool shuts it down after.
papermill is imported here, when a notebook step runs, so importing runnable_dask stays
fast.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

from runnable_dask.runtime.binding import to_param
from runnable_dask.runtime.deadline import notebook_options
from runnable_dask.runtime.kernel_pool import (
    Kernel,
    KernelKey,
    import_notebook_stack,
    kernel_pool,
    process_folder,
)
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
    import_notebook_stack()
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
        scratch = stack.enter_context(  # removed with the process's folder if interrupted
            tempfile.TemporaryDirectory(
                prefix="nb-", dir=process_folder(), ignore_cleanup_errors=True
            )
        )
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
        options: dict[str, Any] = {
            "progress_bar": False,
            "log_output": False,
            "stdout_file": log,
            "stderr_file": log,
            # Only for a kernel papermill starts itself (a kernel_manager_class or
            # engine_name of the user's): quiet, and shut down without the graceful
            # wait, which sometimes takes seconds.
            "extra_arguments": ["--IPKernelApp.log_level=ERROR"],
            "shutdown_kernel": "immediate",
            **notebook_options(),  # the task's timeout, if any
            **task.optional_ploomber_args,
        }
        if pooled(task):
            stack.enter_context(_pooled_kernel(task, notebook.metadata, options, log))
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


_OWN_KERNEL_OPTIONS = ("km", "kernel_manager_class", "engine_name")
"""Options with which the user chooses how kernels start: papermill starts those itself."""


def pooled(task: NotebookTask) -> bool:
    """Whether the step's kernel comes from the pool (unless the user chose otherwise)."""
    return not any(name in task.optional_ploomber_args for name in _OWN_KERNEL_OPTIONS)


def kernel_key(task: NotebookTask, metadata: dict[str, Any]) -> KernelKey | None:
    """The kernel a notebook runs in: papermill's ``kernel_name`` if given, else the
    notebook's kernelspec (as papermill decides), with the user's kernel arguments;
    None when it names none (:func:`check_kernel` says so to the user)."""
    args = task.optional_ploomber_args
    name = args.get("kernel_name") or (metadata.get("kernelspec") or {}).get("name")
    if not name:
        return None
    return KernelKey(str(name), tuple(args.get("extra_arguments") or ()))


@contextmanager
def _pooled_kernel(
    task: NotebookTask, metadata: dict[str, Any], options: dict[str, Any], log: TextIO
) -> Iterator[Kernel]:
    """A kernel from this process's pool, given to papermill as ``km``; shut down after,
    with what its process printed added to the step's log."""
    key = kernel_key(task, metadata)
    assert key is not None, "check_kernel refuses a notebook that names no kernel"
    pool = kernel_pool()
    # papermill runs the notebook in ``cwd`` when given: a kernel started then starts there.
    cwd = os.path.abspath(options.get("cwd") or os.getcwd())
    try:
        kernel = pool.take(key, cwd, owner=_running_task())
    except LookupError as exc:  # jupyter_client's NoSuchKernel
        from jupyter_client.kernelspec import KernelSpecManager

        installed = ", ".join(sorted(KernelSpecManager().find_kernel_specs())) or "none"
        raise NotebookError(
            f"{task.who}: notebook {task.notebook!r} runs in kernel {key.name!r}, which is "
            f"not installed where the step runs (installed: {installed}); install it there, "
            "or name one that is: optional_ploomber_args={'kernel_name': ...}"
        ) from exc
    options.pop("extra_arguments", None)  # start arguments: the kernel has started
    options["km"] = kernel.manager
    try:
        yield kernel
    finally:
        log.write(kernel.process_output())
        pool.give_back(kernel)


def _running_task() -> str | None:
    """The Dask task running in this thread, if any: a cancelled task's kernel is ended."""
    worker = sys.modules.get("distributed.worker")
    key = getattr(worker.thread_state, "key", None) if worker is not None else None
    return str(key) if key is not None else None


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
