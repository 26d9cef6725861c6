"""Warm kernels for a run: which kernels its notebooks use, prepared where they will run.

Which kernels is found here; the executor starts them where its tasks run
(:meth:`runnable_dask.executors.Executor.warm_kernels`), and the workers of a cluster
started for the run start theirs as they start (:mod:`runnable_dask.executors.worker_setup`),
so the kernels' start overlaps the cluster's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from runnable_dask.executors import Executor
from runnable_dask.plan import Node, Plan
from runnable_dask.runtime.context import RunContext
from runnable_dask.sdk import BaseTask, NotebookTask

if TYPE_CHECKING:
    from runnable_dask.runtime.kernel_pool import KernelKey


def kernel_keys(plan: Plan, ctx: RunContext) -> set[KernelKey]:
    """The kernels of the notebooks the run will execute (a mocked run: patched ones)."""
    return _notebook_kernels(plan, lambda node: None if ctx.skips(node) else ctx.task_for(node))


def planned_kernel_keys(plan: Plan) -> set[KernelKey]:
    """The kernels of an unmocked run's notebooks, known as soon as it is planned: the
    workers of the cluster started for the run ready them while it starts."""
    return _notebook_kernels(plan, lambda node: node.step)


def _notebook_kernels(plan: Plan, runs: Callable[[Node], BaseTask | None]) -> set[KernelKey]:
    """The kernels of the pooled notebooks among what ``runs`` says each task runs."""
    keys: set[KernelKey] = set()
    for _, node in plan.nodes():
        if node.step is None or node.kind != "task":
            continue
        task = runs(node)
        if not isinstance(task, NotebookTask):
            continue
        from runnable_dask.runtime.notebook_task import kernel_key, pooled

        if not pooled(task):
            continue
        try:
            with open(task.notebook, encoding="utf-8") as handle:
                key = kernel_key(task, json.load(handle).get("metadata", {}))
        except (OSError, ValueError, AttributeError):
            continue  # the step itself says what is wrong with its notebook
        if key is not None:
            keys.add(key)
    return keys


@contextmanager
def warm_kernels(executor: Executor, plan: Plan, ctx: RunContext) -> Iterator[None]:
    """Start the run's kernels ahead of its notebook steps, where those will run."""
    keys = kernel_keys(plan, ctx)
    if not keys:
        yield
        return
    with executor.warm_kernels(keys):
        yield
