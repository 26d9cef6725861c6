"""The ``local`` executor: the graph on a pool of threads in this process.

Dask's threaded scheduler runs one whole graph per call; the driver adds parts while
the run goes on (a map's iterations once its list is known), so this executor keeps the
dependency counts itself: a task starts when the last of its inputs ends, and a result
is dropped as soon as nothing still to run reads it.
"""

from __future__ import annotations

import os
import queue
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from runnable_dask.announce import RunAnnouncer
from runnable_dask.config import LocalConfig, MockedConfig
from runnable_dask.executors import Deps, Notices, Resolved, Tasks, substitute
from runnable_dask.executors.report import PerformanceReport
from runnable_dask.pending import PendingInputs
from runnable_dask.run_id import RUN_ID_ENV
from runnable_dask.runtime import processes
from runnable_dask.runtime.attempt import task_environment
from runnable_dask.runtime.checkpoint import Checkpoints, InProcessCheckpoints
from runnable_dask.runtime.context import QueueReporter, Reporter
from runnable_dask.stores.catalog import RunCatalog

if TYPE_CHECKING:
    from runnable_dask.runtime.kernel_pool import KernelKey


_Call = tuple[str, tuple[Any, ...], tuple[str, ...], dict[str, Any]]
"""A task ready to run: its key, its task tuple, its inputs' keys and their values."""


class LocalExecutor:
    """Runs every task in a thread pool of this process; no cluster, no dashboard.

    Steps mostly wait (on sleeps, subprocesses, kernels), so the pool defaults to more
    threads than cores: ``max(8, cores)``. Its threads are daemons, so an interrupted run
    ends at once instead of waiting for the steps still running.
    """

    dashboard_link: str | None = None

    def __init__(
        self,
        config: LocalConfig | MockedConfig,
        events: queue.SimpleQueue,
        secret_names: frozenset[str] = frozenset(),
    ) -> None:
        self.secret_names = secret_names
        self._withheld: dict[str, str] = {}
        self.threads = config.max_workers or max(8, os.cpu_count() or 1)
        mocked = "mocked, " if isinstance(config, MockedConfig) else ""
        self.description = f"{mocked}local threads ({self.threads})"
        self._events = events
        self._lock = threading.Lock()
        self._finished: queue.SimpleQueue[tuple[str, tuple[str, ...], Any]] = queue.SimpleQueue()
        self._waiting: dict[str, tuple[tuple[Any, ...], tuple[str, ...]]] = {}
        self._pending = PendingInputs()
        self._readers: defaultdict[str, int] = defaultdict(int)
        self._results: dict[str, Any] = {}
        self._keep: set[str] = set()
        self._watch: set[str] = set()
        self.notices = Notices()
        self._noted_resources = False

    def __enter__(self) -> LocalExecutor:
        # Tasks share this process's environment: while the run goes on, a secret is
        # in it only while a task that names it runs.
        self._withheld = {n: os.environ.pop(n) for n in self.secret_names if n in os.environ}
        self._pool = DaemonThreadPool(self.threads)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown()
        os.environ.update(self._withheld)

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter:
        return QueueReporter(events)

    def checkpoints(self, catalog: RunCatalog, resumed: bool) -> Checkpoints:
        """Tasks hand their outcomes to this process instead of writing a file each."""
        return InProcessCheckpoints.open(catalog, resumed)

    def run_scope(self, run_id: str) -> AbstractContextManager[None]:
        return task_environment({RUN_ID_ENV: run_id})

    @contextmanager
    def warm_kernels(self, keys: set[KernelKey]) -> Iterator[None]:
        """This process's kernel pool, in use while the run lasts (none outlives it)."""
        from runnable_dask.runtime.kernel_pool import pool_in_use

        with pool_in_use(keys):
            yield

    def announcer(self, run_id: str) -> RunAnnouncer:
        return RunAnnouncer(None, run_id)  # no scheduler, no dashboard to tell

    def performance_report(
        self, catalog: RunCatalog, calling_code: str
    ) -> AbstractContextManager[PerformanceReport]:
        return nullcontext(PerformanceReport())  # Dask's report needs a scheduler

    def submit(
        self,
        tasks: Tasks,
        deps: Deps,
        keep: set[str],
        watch: set[str],
        spans: dict[str, tuple[str, ...]],
        resources: dict[str, Any] | None = None,
    ) -> None:
        if resources and not self._noted_resources:
            self._noted_resources = True
            self.notices(
                "note resources are Dask worker resources: on the local executor every "
                "step runs in this process, and they are ignored"
            )
        ready = []
        with self._lock:
            self._keep |= keep
            self._watch |= watch
            for key, task in tasks.items():
                inputs = deps[key]
                self._waiting[key] = (task, inputs)
                for dep in inputs:
                    self._readers[dep] += 1
                if self._pending.wait(key, [d for d in inputs if d not in self._results]):
                    ready.append(self._take(key))
        for call in ready:
            self._pool.submit(self._run, *call)
        self._settle()  # tasks that finished while this held the lock

    def release(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._keep.discard(key)
                self._forget_if_unread(key)
        self._settle()  # tasks that finished while this held the lock

    def stop_processes(self, run_id: str) -> list[dict[str, Any]]:
        return processes.stop_run(run_id)

    def blamed(self, key: str) -> str:
        return key  # a failing task is reported under its own key

    def _take(self, key: str) -> _Call:
        """A task whose inputs are all here, with their values, for :meth:`_run`; under
        the lock, which the caller holds already (taking it again for each task started
        kept the driver waiting on the pool's threads: a third of its time on a map)."""
        task, inputs = self._waiting.pop(key)
        return key, task, inputs, {dep: self._results[dep] for dep in inputs}

    def _run(
        self, key: str, task: tuple[Any, ...], inputs: tuple[str, ...], values: dict[str, Any]
    ) -> None:
        function, *args = task
        try:
            result = function(*(substitute(arg, values) for arg in args))
        except BaseException as exc:  # handed to the driver, which reports it
            error = exc
            self._events.put(Resolved(key, lambda: _raise(error)))
            return
        self._finished.put((key, inputs, result))
        self._settle()

    def _settle(self) -> None:
        """Record the finished tasks and start those they make ready, unless another
        thread holds the lock: that thread records them before it lets go. No pool
        thread ever waits for the lock: one that lost the interpreter while holding it
        made every other thread queue behind it, a switch of threads for each task."""
        while not self._finished.empty():
            if not self._lock.acquire(blocking=False):
                return  # its holder looks at ``_finished`` again after releasing
            try:
                ready = self._record_finished()
            finally:
                self._lock.release()
            for call in ready:
                self._pool.submit(self._run, *call)

    def _record_finished(self) -> list[_Call]:
        """Under the lock: every task finished so far; the tasks now ready."""
        ready: list[_Call] = []
        while True:
            try:
                key, inputs, result = self._finished.get_nowait()
            except queue.Empty:
                return ready
            self._results[key] = result
            for dep in inputs:
                self._readers[dep] -= 1
                self._forget_if_unread(dep)
            ready.extend(self._take(dependent) for dependent in self._pending.arrived(key))
            if key in self._watch:
                self._watch.discard(key)
                self._events.put(Resolved(key, _returning(result)))
            self._forget_if_unread(key)

    def _forget_if_unread(self, key: str) -> None:
        if key in self._results and self._readers[key] <= 0 and key not in self._keep:
            del self._results[key]
            self._readers.pop(key, None)


def _raise(error: BaseException) -> Any:
    raise error


def _returning(result: Any) -> Callable[[], Any]:
    return lambda: result


class DaemonThreadPool:
    """Threads that run the calls they are given, as daemons, and nothing more.

    ``ThreadPoolExecutor`` joins its threads when the interpreter exits, so Ctrl-C would
    wait for every running step; ``multiprocessing.pool.ThreadPool`` has daemon threads
    but costs twice as much per task (0.55 against 0.3 ms, measured on a chain of steps).
    A call gets no ``Future``: the executor hands each task's outcome to the driver
    itself, and a future per task (a condition, its lock, a notify) was waste.
    """

    def __init__(self, threads: int) -> None:
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"runnable-dask-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., object], /, *args: Any) -> None:
        """Run ``fn(*args)`` on the next free thread."""
        self._work.put((fn, args))

    def shutdown(self) -> None:
        """Each thread ends after the call it is running, if any."""
        for _ in self._threads:
            self._work.put(None)

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            fn, args = item
            try:
                fn(*args)
            except BaseException:  # a fault of ours around a task: shown, the thread serves on
                traceback.print_exc()
