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

from runnable_dask.config import Section
from runnable_dask.plan import Plan
from runnable_dask.runtime.checkpoint import Checkpoints
from runnable_dask.runtime.context import Reporter
from runnable_dask.sdk.resources import Resources
from runnable_dask.stores.catalog import RunCatalog

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

    @property
    def report_performance(self) -> bool | None:
        """Whether the run's Dask performance report is kept (the ``dask`` executor's
        option; None: when the run took long enough)."""

    in_process: bool
    """Whether tasks run as threads of the driving process (no worker can be lost)."""
    notice: Callable[[str], None]
    """Where a note for the person watching the run goes (the driver sets it)."""

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` the graph runs through, or None (in-process)."""

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter: ...

    def checkpoints(self, catalog: RunCatalog, resumed: bool) -> Checkpoints:
        """Where the run's tasks keep their successes (``resumed``: with those of the
        run it resumes)."""

    def submit(
        self,
        tasks: Tasks,
        deps: Deps,
        keep: set[str],
        watch: set[str],
        spans: dict[str, tuple[str, ...]],
        resources: dict[str, Resources] | None = None,
    ) -> None:
        """Start ``tasks``; hold the results of ``keep`` for later parts; report ``watch``.

        ``spans`` names, for each task, the branches it runs in (for the dashboard);
        ``resources`` the worker resources of the tasks that ask for some.
        """

    def release(self, keys: Iterable[str]) -> None:
        """Later parts no longer read these kept keys."""

    def stop_processes(self, run_id: str) -> list[dict[str, Any]]:
        """End the child processes of the run's running steps, wherever they run; what
        was ended (step, pid, command, host)."""

    def blamed(self, key: str) -> str:
        """The key of the task whose error ``key``'s task raised (itself, or an input)."""


class ExecutorConfig(Protocol):
    """What an executor type registers (entry-point group ``runnable_dask.executors``):
    the pydantic model of its ``config`` section, which opens the executor for a run."""

    def open(self, events: queue.SimpleQueue, plan: Plan) -> AbstractContextManager[Executor]:
        """The executor for a run of ``plan``, not yet entered; it puts :class:`Resolved`
        items on ``events``. The plan lets it size itself (a ``LocalCluster`` started for
        the run offers the worker resources the steps ask for)."""
        ...


def open_executor(
    spec: Section, events: queue.SimpleQueue, plan: Plan
) -> AbstractContextManager[Executor]:
    """The executor the configuration's ``pipeline-executor`` section asks for."""
    config: ExecutorConfig = spec.config
    return config.open(events, plan)
