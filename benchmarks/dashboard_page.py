"""The Pipeline page's cost: a map run with the page open against the same run without it.

Two LocalClusters of worker processes, started here as a run starts its own (the
scheduler in this process, beside the driver): one plain, one with the page's preload
(``runnable_dask.dashboard``) and a poller fetching the run's JSON every second, as an
open page would. The map runs on each in turn (best of ``--repeat``); the ratio is
with / without (target: 1.1x).

    python benchmarks/dashboard_page.py            # a map of 10,000 items, best of 2
    python benchmarks/dashboard_page.py --n 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the package

from benchmarks.runs import dask_config, ours, parameters_file, run_ours
from benchmarks.timing import best_of
from benchmarks.workloads import Workload
from runnable_dask.dashboard import PRELOAD


@contextlib.contextmanager
def cluster(preload: bool) -> Iterator[Client]:
    extra = {"scheduler_kwargs": {"preload": [PRELOAD]}} if preload else {}
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=4,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            **extra,
        ) as local,
        Client(local, set_as_default=False) as client,
    ):
        client.wait_for_workers(2)
        yield client


@contextlib.contextmanager
def poller(dashboard: str) -> Iterator[list[int]]:
    """Fetch the runs, then the newest run's JSON, every second; count the fetches."""
    fetched = [0]
    stop = threading.Event()

    def poll() -> None:
        base = dashboard.rsplit("/status", 1)[0]
        while not stop.wait(1.0):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with urllib.request.urlopen(f"{base}/runnable-dask/runs", timeout=5) as reply:
                    newest = json.load(reply)["runs"][0]["run_id"]
                with urllib.request.urlopen(f"{base}/runnable-dask/runs/{newest}", timeout=5):
                    fetched[0] += 1

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield fetched
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    workload = Workload("map", args.n)
    folder = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    parameters = parameters_file(folder, workload)
    pipeline = ours(workload)
    with cluster(preload=False) as plain, cluster(preload=True) as paged:
        without = dask_config(folder, "plain", plain.scheduler.address)
        with_page = dask_config(folder, "paged", paged.scheduler.address)
        for config in (without, with_page):  # untimed: imports, worker warm-up
            run_ours(
                ours(Workload("map", 10)), config, parameters_file(folder, Workload("map", 10))
            )
        with poller(paged.dashboard_link) as fetched:
            best = best_of(
                args.repeat,
                {
                    "without the page": lambda: run_ours(pipeline, without, parameters),
                    "with the page open": lambda: run_ours(pipeline, with_page, parameters),
                },
            )
    ratio = best["with the page open"] / best["without the page"]
    print(f"map {args.n}, best of {args.repeat}, LocalCluster of 2 processes x 4 threads")
    for name, seconds in best.items():
        print(f"  {name:20} {seconds:8.2f} s")
    print(f"  ratio {ratio:.2f}x (target 1.1x); the page's JSON was fetched {fetched[0]} times")


if __name__ == "__main__":
    main()
