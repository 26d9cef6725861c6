"""The map workload once on a running cluster, in a process of its own, so that the peak
memory it reports is the driving process's alone.

``python -m benchmarks.map_child ours|bare N ADDRESS [BATCH_SIZE]``, from a scratch folder with the
repository root on ``PYTHONPATH``; prints one JSON line: ``seconds`` (connecting to the
scheduler included, on both sides), ``cpu_seconds`` (this process's CPU time over the
same span: steadier than seconds on a shared machine), ``peak_rss_mb``, ``rss_before_mb``
(after imports) and, for runnable_dask, the time spent writing the run log
(``RunLogStore.write``) and how many writes there were.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distributed import Client

import runnable_dask
from benchmarks import runs
from benchmarks.workloads import Workload, map_list
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStore


def _rss_mb(field: str) -> float:
    """A memory figure of this process from ``/proc/self/status`` (``VmRSS``: now,
    ``VmHWM``: its peak). Not ``ru_maxrss``: Linux carries that over from the parent
    process through fork and exec, so a child of a large benchmark would report the
    parent's size."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _time_writes() -> list[float]:
    """Wrap ``RunLogStore.write`` and ``write_changes`` (a write in parts) so that each
    call's duration is appended to the list (a call made inside another counts once)."""
    spent: list[float] = []
    depth = [0]

    def timed(method: Callable[[RunLogStore, RunLog], None]) -> Any:
        def wrapper(self: RunLogStore, run_log: RunLog) -> None:
            began = time.perf_counter()
            depth[0] += 1
            try:
                method(self, run_log)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    spent.append(time.perf_counter() - began)

        return wrapper

    RunLogStore.write = timed(RunLogStore.write)  # type: ignore[method-assign]
    RunLogStore.write_changes = timed(RunLogStore.write_changes)  # type: ignore[method-assign]
    return spent


def run_ours(workload: Workload, address: str, batch_size: int | None) -> dict[str, Any]:
    folder = Path.cwd()
    config = runs.dask_config(folder, "dask", address)
    parameters = runs.parameters_file(folder, workload)
    pipeline = map_list(runnable_dask, workload.n, batch_size)
    writes = _time_writes()
    before = _rss_mb("VmRSS")
    began, cpu = time.perf_counter(), time.process_time()
    run_log = runs.run_ours(pipeline, config, parameters)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert run_log.parameters["y"].value == list(range(1, workload.n + 1))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_before_mb": before,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "write_seconds": sum(writes),
        "writes": len(writes),
    }


def run_bare(workload: Workload, address: str, batch_size: int | None) -> dict[str, Any]:
    before = _rss_mb("VmRSS")
    began, cpu = time.perf_counter(), time.process_time()
    with Client(address, set_as_default=False) as client:
        result = runs.run_bare_client(workload, client)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    assert result == list(range(1, workload.n + 1))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_before_mb": before,
        "peak_rss_mb": _rss_mb("VmHWM"),
    }


def main() -> None:
    kind, n, address = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    batch_size = int(sys.argv[4]) if len(sys.argv) > 4 else None
    run = {"ours": run_ours, "bare": run_bare}[kind]
    print(json.dumps(run(Workload("map", n), address, batch_size)))


if __name__ == "__main__":
    main()
