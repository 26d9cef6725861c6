"""The run-wide facts every task needs, and the reporters that carry its events home."""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runnable_dask.plan import Node
    from runnable_dask.sdk import BaseTask

Event = dict[str, Any]
Reporter = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class TopicReporter:
    """Sends events from a Dask worker to the driver, which subscribes to ``topic``."""

    topic: str

    def __call__(self, event: Event) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, event)


@dataclass(frozen=True, slots=True)
class QueueReporter:
    """Hands events to the driver in the same process (the ``local`` executor)."""

    events: queue.SimpleQueue

    def __call__(self, event: Event) -> None:
        self.events.put(event)


@dataclass(frozen=True, slots=True)
class RunContext:
    """Passed to every task: which run, where its catalog is, how to report.

    ``patches`` is set for a mocked run: a task named there runs its replacement, any
    other task is recorded as succeeded without running. ``secrets`` are the values, in
    the driver's environment, of the secrets tasks name: each task gets its own as
    environment variables while it runs, on whatever worker. ``project_dir`` is the driver's
    working folder, where relative notebook paths are found when a worker runs in
    another folder of a shared file system.
    """

    run_id: str
    catalog_location: str
    report: Reporter
    patches: dict[str, BaseTask] | None = None
    project_dir: str = ""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def skips(self, node: Node) -> bool:
        """Whether a mocked run records this task without running anything."""
        return self.patches is not None and self._patch(node) is None

    def task_for(self, node: Node) -> BaseTask:
        """What runs for this task: the step itself, or its patch in a mocked run."""
        task = node.step if self.patches is None else self._patch(node) or node.step
        notebook = getattr(task, "notebook", None)
        if notebook and self.project_dir and not os.path.exists(notebook):
            found = os.path.join(self.project_dir, notebook)
            if os.path.exists(found):
                return task.model_copy(update={"notebook": found})
        return task

    def _patch(self, node: Node) -> BaseTask | None:
        patches = self.patches or {}
        return patches.get(node.internal_name) or patches.get(node.name)

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # One per run and the same in every task: no need to hash the reporter each time.
        return ("RunContext", self.run_id, self.catalog_location)
