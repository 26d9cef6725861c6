"""The ``dask`` executor: the graph on a distributed cluster, ours or the user's.

Without ``address`` it starts a ``LocalCluster`` for the run (worker processes, scheduler
and dashboard on 127.0.0.1) and closes it at the end; with ``address`` it connects to a
running scheduler and leaves it running. Tasks report events on a topic of the
scheduler's event log, to which this process subscribes.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable
from contextlib import ExitStack
from typing import Any

from runnable_dask.config import DaskConfig
from runnable_dask.executors import Deps, Resolved, Tasks
from runnable_dask.executors.cluster import ClusterError, connect, ship_graph, ship_user_modules
from runnable_dask.runtime.context import Reporter, TopicReporter


class DaskExecutor:
    """Runs the graph through a ``distributed.Client``."""

    def __init__(self, config: DaskConfig, events: queue.SimpleQueue) -> None:
        self.config = config
        self._events = events
        self._held: dict[str, Any] = {}
        self._watched: dict[str, Any] = {}
        self.dashboard_link: str | None = None
        self.description = ""
        self._stack = ExitStack()
        self._client: Any = None
        self._topics: list[str] = []
        self._remote = False

    def __enter__(self) -> DaskExecutor:
        try:
            self._client, self.description, self.dashboard_link = connect(self.config, self._stack)
        except BaseException:
            self._stack.close()
            raise
        # Workers the run did not start may not have the user's project: send its code.
        self._remote = bool(self.config.address or self.config.cluster_class)
        if self._remote:
            ship_user_modules([])
        return self

    def __exit__(self, *exc_info: object) -> None:
        for topic in self._topics:
            self._client.unsubscribe_topic(topic)
        self._stack.close()

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter:
        topic = f"runnable-dask/{run_id}"
        self._client.subscribe_topic(topic, lambda event: events.put(event[1]))
        self._topics.append(topic)
        return TopicReporter(topic)

    def submit(self, tasks: Tasks, deps: Deps, keep: set[str], watch: set[str]) -> None:
        held = self._held
        graph = {
            key: _with_futures(task, held) if any(d in held for d in deps[key]) else task
            for key, task in tasks.items()
        }
        if self._remote:
            graph = ship_graph(graph)
        wanted = [key for key in graph if key in keep or key in watch]
        for key, future in zip(wanted, self._client.get(graph, wanted, sync=False), strict=True):
            if key in keep:
                held[key] = future
            if key in watch:
                self._watched[key] = future
                future.add_done_callback(self._resolved)

    def release(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._held.pop(key, None)

    def _resolved(self, future: Any) -> None:
        self._watched.pop(future.key, None)
        self._events.put(Resolved(future.key, future.result))


def _with_futures(task: tuple[Any, ...], held: dict[str, Any]) -> tuple[Any, ...]:
    """The task with the keys of earlier parts it reads replaced by their held futures."""
    function, *args = task
    return (function, *(_swap(arg, held) for arg in args))


def _swap(arg: Any, held: dict[str, Any]) -> Any:
    if isinstance(arg, str) and arg in held:
        return held[arg]
    if isinstance(arg, list):
        return [held.get(item, item) if isinstance(item, str) else item for item in arg]
    return arg


__all__ = ["ClusterError", "DaskExecutor"]
