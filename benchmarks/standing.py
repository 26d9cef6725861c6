"""A ``runnable-dask cluster`` for the benchmark: started with the command a user types,
in a state file of the scratch folder, and stopped at the end; and bare Dask's own
counterpart of a run that starts its cluster (a LocalCluster started, used, closed)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster

from benchmarks.processes import ROOT
from benchmarks.workloads import Workload
from runnable_dask.executors import standing

RUNNABLE_DASK = str(Path(sys.executable).with_name("runnable-dask"))


@contextlib.contextmanager
def pointed_at(state_file: Path) -> Iterator[None]:
    """Runs in this process (and processes it starts) look for a cluster in ``state_file``."""
    previous = os.environ.get(standing.STATE_ENV)
    os.environ[standing.STATE_ENV] = str(state_file)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(standing.STATE_ENV, None)
        else:
            os.environ[standing.STATE_ENV] = previous


@contextlib.contextmanager
def runnable_dask_cluster(folder: Path, workers: int, threads: int) -> Iterator[Path]:
    """``runnable-dask cluster start`` until exit, then ``stop``; yields its state file.

    Its processes can import ``benchmarks`` (as an installed package), so the workload
    functions travel by reference, as on the other clusters of the benchmark.
    """
    state_file = folder / "cluster.json"
    env = {**os.environ, standing.STATE_ENV: str(state_file), "PYTHONPATH": str(ROOT)}
    command = [RUNNABLE_DASK, "cluster", "start", "--workers", str(workers)]
    command += ["--threads", str(threads), "--dashboard-address", "127.0.0.1:0"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    try:
        yield state_file
    finally:
        subprocess.run(
            [RUNNABLE_DASK, "cluster", "stop"], env=env, check=False, capture_output=True
        )


def bare_own_cluster(workload: Workload, workers: int, threads: int) -> Any:
    """Bare Dask doing what a run with its own cluster does: start one, run, close it."""
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        return client.get(*workload.bare())
