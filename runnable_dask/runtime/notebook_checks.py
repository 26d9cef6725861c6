"""What a notebook must say before papermill runs it, checked where the step runs (the
notebook is read on the worker), so the message names the step and the fix."""

from __future__ import annotations

from typing import Any

from runnable_dask.sdk import NotebookTask


class NotebookKernelError(Exception):
    """The notebook does not name the kernel to run it with."""


def check_kernel(task: NotebookTask, notebook: Any) -> None:
    """Refuse a notebook without a kernelspec unless the step names a kernel itself.

    papermill would stop with "No kernel name found in notebook and no override
    provided", naming neither the step nor what to change.
    """
    if task.optional_ploomber_args.get("kernel_name"):
        return
    kernelspec = notebook.get("metadata", {}).get("kernelspec") or {}
    if not kernelspec.get("name"):
        raise NotebookKernelError(
            f"{task.who}: notebook {task.notebook!r} names no kernel (its metadata has no "
            "kernelspec); choose a kernel in Jupyter and save the notebook, or name one in "
            "the step: optional_ploomber_args={'kernel_name': 'python3'}"
        )
