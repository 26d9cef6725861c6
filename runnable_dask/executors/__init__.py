"""Where the graph runs: in-process threads (``local``, ``mocked``) or a Dask cluster.

An executor is a context manager that owns only what it opened. The driver hands it the
graph in parts (:meth:`Executor.submit`): a part's tasks may read keys of earlier parts
that the executor was asked to keep. For every key the driver watches, one
:class:`Resolved` item arrives on the events queue when its task ends.

Whatever differs with where tasks run (how their events travel, where finished tasks keep
their outcomes, what they find in their environment, where notebook kernels are warmed,
what watches the run from outside) the executor supplies through the small protocols
below, so neither the driver nor a task asks which executor it has.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from runnable_dask.config import Section
from runnable_dask.plan import Plan
from runnable_dask.runtime.checkpoint import Checkpoints
from runnable_dask.runtime.context import Reporter
from runnable_dask.sdk.resources import Resources
from runnable_dask.stores.catalog import RunCatalog

if TYPE_CHECKING:
    from runnable_dask.announce import RunAnnouncer
    from runnable_dask.executors.report import PerformanceReport
    from runnable_dask.runtime.kernel_pool import KernelKey
    from runnable_dask.stores.catalog import RunCatalog

Tasks = dict[str, tuple[Any, ...]]
Deps = dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A watched task ended: ``outcome()`` returns its value or raises what Dask raised."""

    key: str
    outcome: Callable[[], Any]


def substitute(arg: Any, values: Mapping[str, Any]) -> Any:
    """A task argument with the keys it names (itself, or the items of a list: a join's
    inputs) replaced by ``values``: results in this process, or futures on a cluster."""
    if isinstance(arg, str) and arg in values:
        return values[arg]
    if isinstance(arg, list):
        return [values.get(item, item) if isinstance(item, str) else item for item in arg]
    return arg


class Notices:
    """Notes for the person watching the run (a cluster found gone, resources ignored).

    An executor may have something to say before anyone listens (while it connects):
    it is held until the driver listens, after the run's first lines.
    """

    def __init__(self) -> None:
        self._held: list[str] = []
        self._listener: Callable[[str], None] | None = None

    def __call__(self, text: str) -> None:
        """Say ``text``: its first word is its label (``note ...``)."""
        if self._listener is None:
            self._held.append(text)
        else:
            self._listener(text)

    def listen(self, listener: Callable[[str], None]) -> None:
        """Send every note, those held first, to ``listener``."""
        self._listener = listener
        for text in self._held:
            listener(text)
        self._held.clear()


class Reporting(Protocol):
    """How a task's events reach the driver from where it runs."""

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter:
        """The reporter tasks of ``run_id`` send their events with; they arrive on
        ``events``."""
        ...


class Checkpointing(Protocol):
    """Where a finished task keeps its outcome, so a resumed run does not run it again."""

    def checkpoints(self, catalog: RunCatalog, resumed: bool) -> Checkpoints:
        """Where the run's tasks keep their successes (``resumed``: with those of the
        run it resumes)."""
        ...


class TaskSurroundings(Protocol):
    """What the run's tasks find where they run."""

    def run_scope(self, run_id: str) -> AbstractContextManager[None]:
        """Held while the run goes on: tasks in this process find ``RUNNABLE_RUN_ID``
        set once for the whole run, instead of per step."""
        ...

    def warm_kernels(self, keys: set[KernelKey]) -> AbstractContextManager[None]:
        """Held while the run goes on: these notebook kernels started ahead of the
        notebook steps, where those steps run."""
        ...


class Observers(Protocol):
    """What watches the run from outside it: a scheduler's dashboard and its reports."""

    def announcer(self, run_id: str) -> RunAnnouncer:
        """Tells the dashboard's Pipeline page about the run (sends nothing without a
        scheduler)."""
        ...

    def performance_report(
        self, catalog: RunCatalog, calling_code: str
    ) -> AbstractContextManager[PerformanceReport]:
        """Held while the graph runs: the run's Dask performance report, kept in the
        catalog when the executor's configuration asks for one."""
        ...


class Executor(Reporting, Checkpointing, TaskSurroundings, Observers, Protocol):
    """What the driver needs from a place to run the graph."""

    dashboard_link: str | None
    description: str
    notices: Notices
    """Notes for the person watching the run; the driver listens after the first lines."""

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
