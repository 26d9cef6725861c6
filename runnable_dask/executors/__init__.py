"""Where the graph runs: in-process threads (``local``) or a Dask cluster (``dask``).

An executor is a context manager that owns only what it opened. ``submit`` starts the
graph and guarantees one :class:`Finished` item on the events queue when it ends; the
driver reads events from that queue until then.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from runnable_dask.config import DaskExecutorSpec, ExecutorSpec
from runnable_dask.runtime.context import Reporter
from runnable_dask.runtime.tokens import BranchEnd


@dataclass(frozen=True, slots=True)
class Finished:
    """The graph ended: ``outcome()`` returns the root's end or raises what Dask raised."""

    outcome: Callable[[], BranchEnd]


class Executor(Protocol):
    """What the driver needs from a place to run the graph."""

    dashboard_link: str | None
    description: str

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter: ...

    def submit(self, graph: dict[str, Any], key: str, events: queue.SimpleQueue) -> None: ...


def open_executor(spec: ExecutorSpec) -> AbstractContextManager[Executor]:
    """The executor the configuration asks for (not yet entered)."""
    if isinstance(spec, DaskExecutorSpec):
        from runnable_dask.executors.dask import DaskExecutor

        return DaskExecutor(spec.config)
    from runnable_dask.executors.local import LocalExecutor

    return LocalExecutor(spec.config)
