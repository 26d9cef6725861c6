"""The ``local`` executor: the graph on Dask's threaded scheduler, in this process."""

from __future__ import annotations

import os
import queue
import threading
from multiprocessing.pool import ThreadPool
from typing import Any

import dask.threaded

from runnable_dask.config import LocalConfig
from runnable_dask.executors import Finished
from runnable_dask.runtime.context import QueueReporter, Reporter
from runnable_dask.runtime.tokens import BranchEnd


class LocalExecutor:
    """Runs every task in a thread pool of this process; no cluster, no dashboard.

    Steps mostly wait (on sleeps, subprocesses, kernels), so the pool defaults to more
    threads than cores: ``max(8, cores)``. Its threads are daemons, so an interrupted run
    ends at once instead of waiting for the steps still running.
    """

    dashboard_link: str | None = None

    def __init__(self, config: LocalConfig) -> None:
        self.threads = config.max_workers or max(8, os.cpu_count() or 1)
        self.description = f"local threads ({self.threads})"

    def __enter__(self) -> LocalExecutor:
        self._pool = ThreadPool(self.threads)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.terminate()

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter:
        return QueueReporter(events)

    def submit(self, graph: dict[str, Any], key: str, events: queue.SimpleQueue) -> None:
        def run() -> None:
            try:
                result: BranchEnd = dask.threaded.get(graph, key, pool=self._pool)
            except BaseException as exc:  # handed to the driver, which reports it
                error = exc
                events.put(Finished(outcome=lambda: _raise(error)))
            else:
                events.put(Finished(outcome=lambda: result))

        threading.Thread(target=run, name="runnable-dask-local", daemon=True).start()


def _raise(error: BaseException) -> BranchEnd:
    raise error
