"""Where the graph runs: in-process threads (``local``, ``mocked``) or a Dask cluster.

An executor is a context manager that owns only what it opened. The driver hands it the
graph in parts (:meth:`Executor.submit`): a part's tasks may read keys of earlier parts
that the executor was asked to keep. For every key the driver watches, one
:class:`Resolved` item arrives on the events queue when its task ends.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from runnable_dask.config import DaskExecutorSpec, ExecutorSpec
from runnable_dask.runtime.context import Reporter

Tasks = dict[str, tuple[Any, ...]]
Deps = dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A watched task ended: ``outcome()`` returns its value or raises what Dask raised."""

    key: str
    outcome: Callable[[], Any]


class Executor(Protocol):
    """What the driver needs from a place to run the graph."""

    dashboard_link: str | None
    description: str
    note: str
    """Said under the first line of the run, when not empty (a cluster found gone)."""
    report_performance: bool | None
    """Whether the run's Dask performance report is kept (the ``dask`` executor's option;
    None: when the run took long enough)."""
    in_process: bool
    """Whether tasks run as threads of the driving process (no worker can be lost)."""

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` the graph runs through, or None (in-process)."""

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter: ...

    def submit(
        self,
        tasks: Tasks,
        deps: Deps,
        keep: set[str],
        watch: set[str],
        spans: dict[str, tuple[str, ...]],
    ) -> None:
        """Start ``tasks``; hold the results of ``keep`` for later parts; report ``watch``.

        ``spans`` names, for each task, the branches it runs in (for the dashboard).
        """

    def release(self, keys: Iterable[str]) -> None:
        """Later parts no longer read these kept keys."""


def open_executor(
    spec: ExecutorSpec, events: queue.SimpleQueue
) -> AbstractContextManager[Executor]:
    """The executor the configuration asks for (not yet entered)."""
    if isinstance(spec, DaskExecutorSpec):
        from runnable_dask.executors.dask import DaskExecutor

        return DaskExecutor(spec.config, events)
    from runnable_dask.executors.local import LocalExecutor

    return LocalExecutor(spec.config, events)
