"""Regression guard: runnable_dask stays within 1.5x of bare Dask on the same scheduler.

Only ratios, never absolute times: each test times runnable_dask and the same graph on
bare Dask, on the same scheduler in this process, taken in turn (ours, bare, ours, ...),
and compares the best of several runs of each, so a busy machine slows both sides. The
chains are long enough that the cost per step, not a run's fixed start-up, decides the
ratio. The workloads and the way they run are the benchmark's own
(``benchmarks/workloads.py``, ``benchmarks/runs.py``); ``python benchmarks/bench.py``
prints the full table.

Run with ``python -m pytest benchmarks``: a tight ratio on a shared machine is a coin toss,
so the default test run (``tests/``) does not include it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from distributed import Client

from benchmarks import runs
from benchmarks.workloads import Workload

LIMIT = 1.5


def _check(
    workload: Workload, config: Path, bare: Callable[[Workload], object], repeat: int, folder: Path
) -> None:
    runs.warm_up(config, bare)
    best = runs.ours_and_bare(workload, config, bare, repeat, folder)
    ratio = best["ours"] / best["bare"]
    print(f"{workload.label}: ours {best['ours']:.3f} s, bare {best['bare']:.3f} s, {ratio:.2f}x")
    assert ratio <= LIMIT, (
        f"{workload.label} on {config.stem}: runnable_dask took {best['ours']:.3f} s, bare "
        f"Dask {best['bare']:.3f} s on the same scheduler: {ratio:.2f}x, over {LIMIT}x"
    )


def test_local_chain_within_limit_of_dask_threaded(workdir: Path) -> None:
    """1000 steps: bare Dask's threaded scheduler takes about 0.1 ms a step."""
    with ThreadPoolExecutor(runs.LOCAL_THREADS) as pool:
        bare = partial(runs.run_bare_threaded, pool=pool)
        _check(Workload("chain", 1000), runs.local_config(workdir), bare, 5, workdir)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A LocalCluster of two worker processes on 127.0.0.1, and a client of it."""
    with runs.local_cluster(2, 2) as client:
        yield client


@pytest.mark.cluster
def test_dask_chain_within_limit_of_client_get(workdir: Path, client: Client) -> None:
    """200 steps: bare Dask takes about 6 ms a step on a LocalCluster, so the run's own
    start (connecting a client, creating the run log) is a small part of the ratio."""
    config = runs.dask_config(workdir, "dask", client.scheduler.address)
    bare = partial(runs.run_bare_client, client=client)
    _check(Workload("chain", 200), config, bare, 3, workdir)
