"""How each side runs a workload in this process, for the benchmark and its guard test.

runnable_dask runs as a user runs it, ``Pipeline.execute()`` with a configuration file,
its console silenced and a fresh run id each time; bare Dask runs the same shape through
``dask.threaded.get`` on a given pool (the ``local`` executor's counterpart) or
``client.get`` on the same cluster (the ``dask`` executor's). Both sides are timed in
turn, after one untimed run each.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import yaml
from distributed import Client, LocalCluster

import runnable_dask
from benchmarks.timing import best_of
from benchmarks.workloads import Workload
from runnable_dask.stores.runlog import RunLog

LOCAL_THREADS = 8  # the local executor's default on up to 8 cores: max(8, cores)
WARM_UP = Workload("wide", 8)


def write_config(folder: Path, name: str, executor: str, **config: Any) -> Path:
    """A configuration file choosing ``executor`` (``local`` or ``dask``) with ``config``."""
    path = folder / f"{name}.yaml"
    document = {"pipeline-executor": {"type": executor, "config": config}}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def local_config(folder: Path) -> Path:
    return write_config(folder, "local", "local", max_workers=LOCAL_THREADS)


def dask_config(folder: Path, name: str, address: str) -> Path:
    """A running cluster by address, without Dask's performance report (which adds about
    half a second per run to render: a cost of the report, not of running the graph)."""
    return write_config(folder, name, "dask", address=address, performance_report=False)


def parameters_file(folder: Path, workload: Workload) -> str:
    """The workload's parameters as a file (``""`` when it has none)."""
    if not workload.parameters:
        return ""
    path = folder / f"parameters-{workload.kind}-{workload.n}.yaml"
    path.write_text(yaml.safe_dump(workload.parameters), encoding="utf-8")
    return str(path)


def run_ours(pipeline: Any, config: Path, parameters: str = "") -> RunLog:
    """One run with the console silenced and a run id of its own.

    The id is given rather than generated so that repeated runs in one second never
    share a run log, whatever the generator's resolution.
    """
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return pipeline.execute(
            configuration_file=str(config),
            parameters_file=parameters,
            run_id=f"bench-{uuid.uuid4().hex[:12]}",
        )


def ours(workload: Workload) -> Any:
    """The workload's runnable_dask pipeline."""
    return workload.pipeline(runnable_dask)


@contextlib.contextmanager
def local_cluster(workers: int, threads: int) -> Iterator[Client]:
    """A LocalCluster of worker processes on 127.0.0.1, and a client of it, until exit."""
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        client.wait_for_workers(workers)
        yield client


def run_bare_threaded(workload: Workload, pool: ThreadPoolExecutor) -> Any:
    return dask.threaded.get(*workload.bare(), pool=pool)


def run_bare_client(workload: Workload, client: Any) -> Any:
    return client.get(*workload.bare())


def warm_up(config: Path, bare: Callable[[Workload], object]) -> None:
    """One small untimed run of each side: the first run in a process (ours, or a fresh
    cluster's workers) pays for imports that no later run pays for."""
    run_ours(ours(WARM_UP), config)
    bare(WARM_UP)


def ours_and_bare(
    workload: Workload,
    config: Path,
    bare: Callable[[Workload], object],
    repeat: int,
    folder: Path,
) -> dict[str, float]:
    """The best seconds of runnable_dask (``ours``) and of ``bare``, taken in turn."""
    pipeline = ours(workload)
    parameters = parameters_file(folder, workload)
    return best_of(
        repeat,
        {
            "ours": lambda: run_ours(pipeline, config, parameters),
            "bare": lambda: bare(workload),
        },
    )
