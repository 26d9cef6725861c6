"""The ``dask`` executor: the graph on a distributed cluster, ours or the user's.

It runs on the cluster :func:`~runnable_dask.executors.cluster.connect` finds: a running
scheduler (left running), a cluster manager's, or a ``LocalCluster`` started for the run
(worker processes, scheduler and dashboard on 127.0.0.1), closed at the end. Tasks report
events on a topic of the scheduler's event log, to which this process subscribes.
"""

from __future__ import annotations

import queue
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from typing import TYPE_CHECKING, Any

from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from dask.typing import Key

from runnable_dask.announce import RunAnnouncer
from runnable_dask.config import AUTO_REPORT_SECONDS, DaskConfig
from runnable_dask.executors import Deps, Notices, Resolved, Tasks, substitute
from runnable_dask.executors.cluster import ClusterError, connect, ship_graph, ship_user_modules
from runnable_dask.executors.dask_events import TopicReporter, put_message
from runnable_dask.executors.report import PerformanceReport, performance_report
from runnable_dask.executors.resources import ResourceCheck
from runnable_dask.executors.worker_setup import closing_quietly, workers_without
from runnable_dask.runtime.checkpoint import Checkpoints, FileCheckpoints
from runnable_dask.runtime.context import Reporter
from runnable_dask.stores.catalog import RunCatalog

if TYPE_CHECKING:
    from runnable_dask.runtime.kernel_pool import KernelKey


class DaskExecutor:
    """Runs the graph through a ``distributed.Client``."""

    def __init__(
        self, config: DaskConfig, events: queue.SimpleQueue, secret_names: frozenset[str]
    ) -> None:
        self.config = config
        self.secret_names = secret_names
        self._events = events
        self._held: dict[str, Any] = {}
        self._watched: dict[str, Any] = {}  # a future nobody holds is cancelled
        self.dashboard_link: str | None = None
        self.description = ""
        self.notices = Notices()
        self._stack = ExitStack()
        self._client: Any = None
        self._topics: list[str] = []
        self._by_value = False
        self._preloaded: frozenset[KernelKey] = frozenset()
        self._run = "runnable-dask"
        self._span_ids: dict[tuple[str, ...], str] = {}
        self._resource_check: ResourceCheck | None = None
        self._own_cluster = False

    def __enter__(self) -> DaskExecutor:
        may_start_one = not (self.config.address or self.config.cluster_class)
        try:
            with workers_without(self.secret_names) if may_start_one else nullcontext():
                connection = connect(self.config, self._stack)
        except BaseException:
            self._stack.close()
            raise
        self._client, self.description, self.dashboard_link = connection[:3]
        self._preloaded = connection.preloaded
        self._own_cluster = connection.own
        if connection.note:  # a cluster found gone, said under the run's first lines
            self.notices(f"note {connection.note}")
        # Workers the run did not start may not have the user's project, or hold an older
        # import of it: send its code, if it has any (wrapping every task for cloudpickle
        # costs about 3 ms a task).
        if connection.ship_code:
            self._by_value = bool(ship_user_modules([]))
        return self

    def run_scope(self, run_id: str) -> AbstractContextManager[None]:
        return nullcontext()  # each task sets the run id on its worker while it runs

    @contextmanager
    def warm_kernels(self, keys: set[KernelKey]) -> Iterator[None]:
        """A worker plugin per kernel: each worker keeps its own, registered once per
        cluster, so a standing cluster keeps its kernels ready from one run to the next.

        Not for the kernels the workers of the run's own cluster started as they started
        (:mod:`~runnable_dask.executors.worker_setup`, whose teardown ends them): the
        registration waits for every worker, busy starting kernels, and held the run's
        first step back 0.6 s at load 8.
        """
        from runnable_dask.runtime.kernel_plugin import WarmKernels

        for key in sorted(keys - self._preloaded, key=repr):
            plugin = WarmKernels(key)
            self._client.register_plugin(plugin, name=plugin.name)
        yield

    def announcer(self, run_id: str) -> RunAnnouncer:
        return RunAnnouncer(self._client, run_id)

    def performance_report(
        self, catalog: RunCatalog, calling_code: str
    ) -> AbstractContextManager[PerformanceReport]:
        """As ``performance_report`` in the configuration asks: always, never, or (unset)
        when the run took long enough to be worth the rendering."""
        asked = self.config.performance_report
        if asked is False:
            return nullcontext(PerformanceReport())
        at_least = AUTO_REPORT_SECONDS if asked is None else 0.0
        return performance_report(self._client, catalog, calling_code, at_least)

    def __exit__(self, *exc_info: object) -> None:
        from distributed.client import ClosedClientError

        for topic in self._topics:
            # A client that lost its scheduler may have closed meanwhile (the run waits
            # for its last events first): the subscription went with it.
            with suppress(ClosedClientError):
                self._client.unsubscribe_topic(topic)
        # A client left open (the user's) lets the scheduler drop the run's results only
        # once nothing holds their futures, and this executor can outlive the run: a
        # notebook keeps the last traceback, and with it the frames that hold it.
        self._held.clear()
        self._watched.clear()
        self._stack.close()

    def reporter(self, run_id: str, events: queue.SimpleQueue) -> Reporter:
        self._run = f"runnable-dask {run_id}"
        topic = f"runnable-dask/{run_id}"
        self._client.subscribe_topic(topic, lambda message: put_message(events, message[1]))
        self._topics.append(topic)
        return TopicReporter(topic)

    def checkpoints(self, catalog: RunCatalog, resumed: bool) -> Checkpoints:
        return FileCheckpoints.open(catalog, resumed)

    def submit(
        self,
        tasks: Tasks,
        deps: Deps,
        keep: set[str],
        watch: set[str],
        spans: dict[str, tuple[str, ...]],
        resources: dict[str, dict[str, float]] | None = None,
    ) -> None:
        held = self._held
        if resources:
            self._check_resources(resources)
        graph = {
            key: _with_futures(task, held) if any(d in held for d in deps[key]) else task
            for key, task in tasks.items()
        }
        if self._by_value:
            graph = ship_graph(graph)
        wanted = [key for key in graph if key in keep or key in watch]
        layered = self._with_spans(graph, deps, spans, resources or {})
        futures = self._client.get(layered, wanted, sync=False)
        for key, future in zip(wanted, futures, strict=True):
            if key in keep:
                held[key] = future
            if key in watch:
                self._watched[key] = future
                future.add_done_callback(self._resolved)

    def _with_spans(
        self,
        graph: dict[str, Any],
        deps: Deps,
        spans: dict[str, tuple[str, ...]],
        resources: dict[str, dict[str, float]],
    ) -> HighLevelGraph:
        """The graph with each task annotated with its branch's span: the run is a Dask span
        and each branch a span inside it (Fine Performance Metrics in the dashboard).

        One layer per set of worker resources asked for (the scheduler's resource
        restrictions; one layer when no task asks), whose span annotation is looked up by
        key. A layer per branch, as before, made wide 1000 on a cluster 1-1.5% slower:
        a thousand layers to pickle, unpickle and merge.
        """
        Asked = tuple[tuple[str, float], ...]
        layers: dict[Asked, dict[str, Any]] = defaultdict(dict)
        span_of: dict[str, dict[str, tuple[str, ...]]] = {}
        annotation: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
        for key, task in graph.items():
            layers[tuple(sorted(resources.get(key, {}).items()))][key] = task
            path = spans.get(key, ())
            if path not in annotation:
                annotation[path] = self._span(path)
            span_of[key] = annotation[path]  # one object per branch: pickled once
        layer_of = {key: asked for asked, keys in layers.items() for key in keys}
        names = {
            asked: self._run + ("?" + "&".join(f"{n}={a!r}" for n, a in asked) if asked else "")
            for asked in layers
        }
        depends: dict[str, set[str]] = {name: set() for name in names.values()}
        for key, asked in layer_of.items():
            for dep in deps[key]:
                if dep in layer_of and layer_of[dep] != asked:
                    depends[names[asked]].add(names[layer_of[dep]])
        # Without them Dask would find each key's dependencies by reading its task: they
        # are known.
        key_dependencies: dict[Key, set[Key]] = {
            key: {d for d in deps[key] if d in layer_of} for key in layer_of
        }
        return HighLevelGraph(
            {
                names[asked]: MaterializedLayer(keys, annotations=self._annotations(span_of, asked))
                for asked, keys in layers.items()
            },
            depends,
            key_dependencies,
        )

    @staticmethod
    def _annotations(
        span_of: dict[str, dict[str, tuple[str, ...]]], resources: tuple[tuple[str, float], ...]
    ) -> dict[str, Any]:
        """``span`` as a callable the scheduler calls with each key of the layer."""
        annotations: dict[str, Any] = {"span": span_of.__getitem__}
        if resources:
            annotations["resources"] = dict(resources)
        return annotations

    def _check_resources(self, resources: dict[str, dict[str, float]]) -> None:
        if self._resource_check is None:
            address = str(self._client.scheduler.address)
            can_grow = bool(self.config.address or self.config.cluster_class)
            self._resource_check = ResourceCheck(self._client, address, can_grow, self.notices)
        self._resource_check.submitted(resources)

    def _span(self, path: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """The span annotation of a branch: the same ids each time it is submitted."""
        full = (self._run, *path)
        for depth in range(1, len(full) + 1):
            self._span_ids.setdefault(full[:depth], str(uuid.uuid4()))
        return {
            "name": full,
            "ids": tuple(self._span_ids[full[:d]] for d in range(1, len(full) + 1)),
        }

    def release(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._held.pop(key, None)

    def stop_processes(self, run_id: str) -> list[dict[str, Any]]:
        """Ask every worker to end the run's child processes (each worker also ends
        them by itself when the task is cancelled or the worker closes)."""
        from runnable_dask.runtime.processes import stop_run

        if self._client is None or self._client.status != "running":
            return []
        try:
            found = self._client.run(stop_run, run_id)
            if self._own_cluster:
                self._client.run(closing_quietly)  # its closing is not news
        except Exception:  # the workers are gone or unreachable: they end theirs
            return []
        return [record for records in found.values() for record in records]

    def blamed(self, key: str) -> str:
        """The task the scheduler blames for ``key``'s error: the client is told only
        that the watched key erred, not which of the tasks before it raised."""
        try:
            return self._client.run_on_scheduler(_exception_blame, key) or key
        except Exception:  # the scheduler is gone: the watched key is all we know
            return key

    def _resolved(self, future: Any) -> None:
        self._watched.pop(future.key, None)
        self._events.put(Resolved(future.key, future.result))


def _exception_blame(key: str, dask_scheduler: Any = None) -> str | None:
    """On the scheduler: the key of the task that raised the error ``key`` carries."""
    task = dask_scheduler.tasks.get(key)
    blame = getattr(task, "exception_blame", None)
    return None if blame is None else str(blame.key)


def _with_futures(task: tuple[Any, ...], held: dict[str, Any]) -> tuple[Any, ...]:
    """The task with the keys of earlier parts it reads replaced by their held futures."""
    function, *args = task
    return (function, *(substitute(arg, held) for arg in args))


__all__ = ["ClusterError", "DaskExecutor"]
