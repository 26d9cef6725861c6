"""The run-wide facts every task needs, and the reporters that carry its events home.

A reporter is the executor's: this module holds the protocol and the in-process ones;
the Dask executor's, which sends events through the scheduler, lives with it
(:mod:`runnable_dask.executors.dask_events`)."""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from runnable_dask.compact import Compact
from runnable_dask.pickled_once import reduce_once
from runnable_dask.runtime.events import Event
from runnable_dask.sdk import NotebookTask

if TYPE_CHECKING:
    from runnable_dask.plan import Node
    from runnable_dask.runtime.checkpoint import Checkpoints
    from runnable_dask.sdk import BaseTask

Send = Callable[[list[Event]], None]


class Reporter(Protocol):
    """Carries a task's events home; one call is one message."""

    def __call__(self, events: list[Event]) -> None: ...

    def sender(self) -> Send:
        """A sender bound to where the task runs, usable from another thread of it."""
        ...


@dataclass(frozen=True, slots=True)
class QueueReporter:
    """Hands events to the driver in the same process (the ``local`` executor)."""

    events: queue.SimpleQueue

    def __call__(self, events: list[Event]) -> None:
        for event in events:
            self.events.put(event)

    def sender(self) -> Send:
        return self


@dataclass(frozen=True, slots=True)
class HeldReporter:
    """Holds a task's events to send them together when it ends (a map iteration's step
    and branch end: one message instead of two)."""

    parent: Reporter
    held: list[Event] = field(default_factory=list)

    def __call__(self, events: list[Event]) -> None:
        self.held.extend(events)

    def sender(self) -> Send:
        return self.parent.sender()

    def send(self) -> None:
        if self.held:
            self.parent(self.held)


@dataclass(frozen=True, slots=True)
class RunContext(Compact):
    """Passed to every task: which run, where its catalog is, how to report.

    ``patches`` is set for a mocked run: a task named there runs its replacement, any
    other task is recorded as succeeded without running. ``secrets`` are the values, in
    the driver's environment, of the secrets tasks name: each task gets its own as
    environment variables while it runs, on whatever worker. ``project_dir`` is the driver's
    working folder, where relative notebook paths are found when a worker runs in
    another folder of a shared file system. ``checkpoints`` are the executor's (see
    :attr:`kept`).
    ``cache_location`` is where cached steps keep their entries (see ``step_cache``).
    """

    run_id: str
    catalog_location: str
    reporter: Reporter
    patches: dict[str, BaseTask] | None = None
    project_dir: str = ""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    checkpoints: Checkpoints | None = field(default=None, repr=False)
    cache_location: str = ""

    def report(self, event: Event) -> None:
        """Send one event home."""
        self.reporter([event])

    def holding(self) -> RunContext:
        """This context with its events held until ``send_held`` (see HeldReporter)."""
        return RunContext(  # not dataclasses.replace, which costs as much as a trivial step
            self.run_id,
            self.catalog_location,
            HeldReporter(self.reporter),
            self.patches,
            self.project_dir,
            self.secrets,
            self.checkpoints,
            self.cache_location,
        )

    @property
    def kept(self) -> Checkpoints:
        """Where tasks keep their successes: the executor's, else a file each in the
        run's catalog (a graph that Dask runs without the driver, ``to_delayed``)."""
        if self.checkpoints is not None:
            return self.checkpoints
        from runnable_dask.runtime.checkpoint import FileCheckpoints
        from runnable_dask.stores.catalog import RunCatalog

        return FileCheckpoints(RunCatalog(self.catalog_location, self.run_id))

    def send_held(self) -> None:
        if isinstance(self.reporter, HeldReporter):
            self.reporter.send()

    def skips(self, node: Node) -> bool:
        """Whether a mocked run records this task without running anything."""
        return self.patches is not None and self._patch(node) is None

    def task_for(self, node: Node) -> BaseTask:
        """What runs for this task: the step itself, or its patch in a mocked run."""
        task = node.step if self.patches is None else self._patch(node) or node.step
        notebook = task.notebook if isinstance(task, NotebookTask) else None
        if notebook and self.project_dir and not os.path.exists(notebook):
            found = os.path.join(self.project_dir, notebook)
            if os.path.exists(found):
                return task.model_copy(update={"notebook": found})
        return task

    def _patch(self, node: Node) -> BaseTask | None:
        patches = self.patches or {}
        return patches.get(node.internal_name) or patches.get(node.name)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return reduce_once(self)  # every task of the run carries it

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # One per run and the same in every task: no need to hash the reporter each time.
        return ("RunContext", self.run_id, self.catalog_location)
