"""The ``dask`` executor: the graph on a distributed cluster, ours or the user's.

Without ``address`` it starts a ``LocalCluster`` for the run (worker processes, scheduler
and dashboard on 127.0.0.1) and closes it at the end; with ``address`` it connects to a
running scheduler and leaves it running. Tasks report events on a topic of the
scheduler's event log, to which this process subscribes.
"""

from __future__ import annotations

import logging
import os
import queue
import warnings
from contextlib import ExitStack
from typing import Any

import dask

from runnable_dask.config import DaskConfig
from runnable_dask.exceptions import RunnableDaskError
from runnable_dask.executors import Finished
from runnable_dask.runtime.context import Reporter, TopicReporter

DEFAULT_THREADS_PER_WORKER = 4
DEFAULT_DASHBOARD = "127.0.0.1:8787"
# Steps that share one input all start on the worker holding it; stealing moves the
# surplus to idle workers, and the default 1 s interval is long next to typical steps.
_EMBEDDED_SCHEDULER = {"distributed.scheduler.work-stealing-interval": "100ms"}


class ClusterError(RunnableDaskError):
    """The cluster could not be started or reached."""


class DaskExecutor:
    """Runs the graph through a ``distributed.Client``."""

    def __init__(self, config: DaskConfig) -> None:
        self.config = config
        self.dashboard_link: str | None = None
        self.description = ""
        self._stack = ExitStack()
        self._client: Any = None
        self._topics: list[str] = []

    def __enter__(self) -> DaskExecutor:
        try:
            self._client = self._connect() if self.config.address else self._start_cluster()
        except BaseException:
            self._stack.close()
            raise
        self.dashboard_link = self._client.dashboard_link
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

    def submit(self, graph: dict[str, Any], key: str, events: queue.SimpleQueue) -> None:
        future = self._client.get(graph, key, sync=False)
        future.add_done_callback(lambda done: events.put(Finished(outcome=done.result)))

    def _connect(self) -> Any:
        from distributed import Client

        address = self.config.address
        try:
            client = Client(address, timeout=self.config.timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} within "
                f"{self.config.timeout:g} s ({exc}); start it (dask scheduler) or fix "
                "pipeline-executor.config.address"
            ) from exc
        self._stack.callback(client.close)
        workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        self.description = f"Dask scheduler {address} ({workers} workers)"
        return client

    def _start_cluster(self) -> Any:
        from distributed import Client, LocalCluster

        config = self.config
        n_workers = config.n_workers or min(os.cpu_count() or 1, 4)
        threads = config.threads_per_worker or DEFAULT_THREADS_PER_WORKER
        processes = True if config.processes is None else config.processes
        try:
            with warnings.catch_warnings(), dask.config.set(_EMBEDDED_SCHEDULER):
                warnings.simplefilter("ignore")
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=threads,
                    processes=processes,
                    host="127.0.0.1",
                    scheduler_port=0,
                    dashboard_address=config.dashboard_address or DEFAULT_DASHBOARD,
                    silence_logs=logging.ERROR,
                    timeout=config.timeout,
                )
        except Exception as exc:
            raise ClusterError(
                f"could not start a LocalCluster ({exc}). A script that starts one must run "
                'its pipeline under `if __name__ == "__main__":`, since worker processes '
                "re-import it"
            ) from exc
        self._stack.callback(cluster.close)
        client = Client(cluster, set_as_default=False)
        self._stack.callback(client.close)
        kind = "processes" if processes else "threads"
        self.description = f"LocalCluster ({n_workers} worker {kind} x {threads} threads)"
        return client
