"""The run's own LocalCluster, started while the run gets ready.

A run that starts its own cluster waits 1.5-2.5 s for its worker processes; meanwhile it
can claim its run log, read its parameters, ask git for the code's identity and import
what the driver needs. :func:`early_start` starts the cluster in a thread as soon as the
plan is known (the secrets tasks name are withheld from the workers, as in
:class:`~runnable_dask.executors.dask.DaskExecutor`; its workers start the kernels of its
notebooks as they start, see :mod:`~runnable_dask.executors.worker_setup`), and
:func:`~runnable_dask.executors.cluster.connect` takes it over (:func:`take`). Only the
case that surely ends in a LocalCluster for the run starts early: no ``address`` or
``cluster_class``, no default Dask client in this process, no ``DASK_SCHEDULER_ADDRESS``,
no ``runnable-dask cluster`` state file
(a stale one is left for ``connect`` to say and clean), or options only such a cluster
honours. The block ends when the cluster is up (or failed: ``connect`` says why); a run
that fails within it closes the cluster it started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from runnable_dask.config import DaskConfig
from runnable_dask.plan import Plan

if TYPE_CHECKING:
    from distributed import LocalCluster
    from distributed.security import Security

    from runnable_dask.runtime.kernel_pool import KernelKey


class EarlyCluster:
    """A LocalCluster starting in a thread for a run configured by ``config``."""

    def __init__(
        self,
        config: DaskConfig,
        secret_names: frozenset[str],
        kernels: frozenset[KernelKey] = frozenset(),
    ) -> None:
        from runnable_dask.executors.cluster import _resource_tracker_running

        self.config = config
        self.kernels = kernels
        """The kernels each of its workers starts as it starts."""
        # Whether a run before this one left multiprocessing's helper running: connect
        # ends it after this cluster only if this run started it.
        self.tracker_was_running = _resource_tracker_running()
        self._started: Future[tuple[LocalCluster, Security | None]] = Future()
        name = "runnable-dask-early-cluster"
        args = (secret_names, kernels)
        threading.Thread(target=self._start, args=args, name=name, daemon=True).start()

    def _start(self, secret_names: frozenset[str], kernels: frozenset[KernelKey]) -> None:
        from runnable_dask.executors.cluster import build_security, new_local_cluster
        from runnable_dask.executors.worker_setup import workers_without

        try:
            with workers_without(secret_names, kernels):
                security = build_security(self.config.security, embedded=True)
                started = new_local_cluster(self.config, security)
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(started)  # once the environment is whole again

    def wait(self) -> None:
        """Until the cluster is up or its start failed."""
        wait([self._started])

    def result(self) -> tuple[LocalCluster, Security | None]:
        """The cluster and the security it serves with, once up (or why it is not)."""
        return self._started.result()

    def close(self) -> None:
        """Close the cluster once it is up (a run that failed first waits for it: closing
        a LocalCluster halfway through its start leaves worker processes behind)."""
        if self._started.exception() is None:
            self._started.result()[0].close()


_pending: list[EarlyCluster] = []
_pending_lock = threading.Lock()


def _starts_own(config: DaskConfig) -> bool:
    """Whether :func:`~runnable_dask.executors.cluster.connect` will surely start a
    LocalCluster for a run with ``config`` (see the module's docstring)."""
    from runnable_dask.executors import standing
    from runnable_dask.executors.cluster import (
        _asks_for_its_own,
        _dask_default_address,
        usable_client,
    )

    if config.address or config.cluster_class:
        return False
    if _asks_for_its_own(config):
        return True
    if usable_client() is not None or _dask_default_address() is not None:
        return False
    try:
        return not standing.state_path().exists()
    except OSError:
        return False


@contextmanager
def early_start(spec: Any, plan: Plan) -> Iterator[None]:
    """Start the run's own cluster now, if it will have one; closed if the block fails."""
    config = getattr(spec, "config", None)
    if not isinstance(config, DaskConfig):
        yield
        return
    from runnable_dask.executors.kernels import planned_kernel_keys
    from runnable_dask.executors.resources import offered_by_local_cluster
    from runnable_dask.plan import secret_names

    config = offered_by_local_cluster(config, plan)
    if not _starts_own(config):
        yield
        return
    early = EarlyCluster(config, secret_names(plan), frozenset(planned_kernel_keys(plan)))
    with _pending_lock:
        _pending.append(early)
    try:
        yield
        # Up (or failed) before the executor opens: the start's changes to the environment
        # and the dask config are undone before the executor makes its own.
        early.wait()
    except BaseException:
        with _pending_lock:
            if early in _pending:
                _pending.remove(early)
        early.close()
        if not early.tracker_was_running:
            from runnable_dask.executors.cluster import _end_resource_tracker

            _end_resource_tracker()
        raise


def take(config: DaskConfig) -> EarlyCluster | None:
    """The cluster started early for a run configured as ``config``, now the caller's."""
    with _pending_lock:
        for early in _pending:
            if early.config == config:
                _pending.remove(early)
                return early
    return None
