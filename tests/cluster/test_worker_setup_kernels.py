"""The workers of the cluster a run starts for itself start its notebooks' kernels as
they start (issue 12): before the run has connected or asked for anything, each worker
has an idle kernel, and the kernel ends with its worker."""

from __future__ import annotations

from typing import Any

import psutil
import pytest
from distributed import Client

from runnable_dask.config import DaskConfig
from runnable_dask.executors.cluster import new_local_cluster
from runnable_dask.executors.worker_setup import workers_without
from runnable_dask.runtime.kernel_pool import KernelKey

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

KEY = KernelKey("python3", ("--InteractiveShell.autocall=0",))  # arguments travel too


def idle_kernel() -> dict[str, Any]:
    """On a worker: its pool's idle kernel once started, and how many the pool started."""
    from runnable_dask.runtime.kernel_pool import current_pool

    pool = current_pool()
    if pool is None:
        return {}
    kernel = pool._idle[KEY].result(timeout=120)
    return {"pid": kernel.pid, "key": kernel.key, "started": pool.started}


def test_each_worker_starts_the_runs_kernels_as_it_starts() -> None:
    config = DaskConfig(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    with workers_without((), kernels=[KEY]):
        cluster, security = new_local_cluster(config, None)
    try:
        with Client(cluster, security=security, set_as_default=False) as client:
            # Nothing registered, nothing submitted: the preload alone started them.
            kernels = client.run(idle_kernel)
        pids = [seen["pid"] for seen in kernels.values()]
        assert len(kernels) == 2 and all(kernels.values()), kernels
        assert {seen["key"] for seen in kernels.values()} == {KEY}
        assert [seen["started"] for seen in kernels.values()] == [1, 1]
        assert all(psutil.pid_exists(pid) for pid in pids)
        workers = {psutil.Process(pid).ppid() for pid in pids}
        assert len(workers) == 2, "one kernel in each worker process"
    finally:
        cluster.close()
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"idle kernels {left} outlived their workers"


def test_a_cluster_for_a_run_without_notebooks_starts_no_kernel() -> None:
    config = DaskConfig(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    with workers_without(()):
        cluster, security = new_local_cluster(config, None)
    try:
        with Client(cluster, security=security, set_as_default=False) as client:
            assert list(client.run(idle_kernel).values()) == [{}]
    finally:
        cluster.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
