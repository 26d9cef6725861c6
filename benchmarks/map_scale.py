"""A wide Map against the same graph on bare Dask, on one real cluster, side by side.

Run from the repository root: ``python benchmarks/map_scale.py [--n 1000 10000]``.

It starts ``dask scheduler`` and two ``dask worker`` processes (4 threads each, on
127.0.0.1, no dashboards), so the process that drives a run holds only its own memory.
For each N it runs, each in a fresh subprocess connected by address:

- *runnable_dask*: a PythonTask returning ``list(range(N))``, then a Map over it whose
  branch is one PythonTask returning ``x + 1``, reduced with ``"lambda *v: sum(v)"``;
- *bare Dask*: the same shape as a plain graph through ``client.get``: one task making the
  list, N tasks each reading its item and adding one, one task summing them.

Each subprocess reports the wall time of the run (``Pipeline.execute()``, which includes
connecting to the scheduler; for bare Dask, connecting plus ``client.get``), its peak RSS
(``ru_maxrss``) and its RSS before the run (after imports). ``--tracemalloc`` adds a
second, slower run of each that reports the peak of Python allocations during the run.
Nothing is asserted: this prints a table. Every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

SIZE = {"n": 0}  # set in the child before the run; pickled by value with make_list


def make_list() -> list[int]:
    return list(range(SIZE["n"]))


def inc(x: int) -> int:
    return x + 1


def inc_item(items: list[int], index: int) -> int:
    return items[index] + 1


def total(*values: int) -> int:
    return sum(values)


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_ours(n: int, address: str, trace: bool, report: bool = True) -> dict[str, Any]:
    SIZE["n"] = n
    import tracemalloc

    import yaml
    from rich.console import Console

    from runnable_dask import Map, Pipeline, PythonTask, driver
    from runnable_dask.console import RunConsole

    quiet = RunConsole(Console(file=open(os.devnull, "w")))  # noqa: SIM115
    driver.RunConsole = lambda: quiet
    with open("dask.yaml", "w") as handle:
        yaml.safe_dump(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"address": address, "performance_report": report},
                }
            },
            handle,
        )
    pipeline = Pipeline(
        steps=[
            PythonTask(name="make", function=make_list, returns=["items"]),
            Map(
                name="sweep",
                branch=Pipeline(steps=[PythonTask(name="inc", function=inc, returns=["y"])]),
                iterate_on="items",
                iterate_as="x",
                reducer="lambda *v: sum(v)",
            ),
        ]
    )
    before = _rss_now_mb()
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    run_log = pipeline.execute(configuration_file="dask.yaml")
    seconds = time.perf_counter() - began
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    result = run_log.parameters["y"].value
    assert run_log.status == "SUCCESS" and result == n * (n + 1) // 2, (run_log.status, result)
    return {"seconds": seconds, "rss_before": before, "peak_rss": _peak_rss_mb(), "traced": traced}


def child_bare(n: int, address: str, trace: bool) -> dict[str, Any]:
    SIZE["n"] = n
    import tracemalloc

    from distributed import Client

    tag = uuid.uuid4().hex[:8]
    before = _rss_now_mb()
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    with Client(address, set_as_default=False) as client:
        connected = time.perf_counter() - began
        graph: dict[str, Any] = {f"make-{tag}": (make_list,)}
        for i in range(n):
            graph[f"inc-{tag}-{i}"] = (inc_item, f"make-{tag}", i)
        graph[f"total-{tag}"] = (total, *[f"inc-{tag}-{i}" for i in range(n)])
        result = client.get(graph, f"total-{tag}")
        seconds = time.perf_counter() - began
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    assert result == n * (n + 1) // 2, result
    return {
        "seconds": seconds,
        "connect": connected,
        "rss_before": before,
        "peak_rss": _peak_rss_mb(),
        "traced": traced,
    }


def _child(
    kind: str, n: int, address: str, trace: bool, timeout: float, report: bool
) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix=f"map-scale-{kind}-{n}-")
    command = [sys.executable, os.path.abspath(__file__), "--child", kind, "--n", str(n)]
    command += ["--address", address] + (["--tracemalloc"] if trace else [])
    command += [] if report else ["--no-report"]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} N={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Cluster:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, stopped on exit."""

    def __init__(self, workers: int = 2, threads: int = 4) -> None:
        self.workers, self.threads = workers, threads
        self.processes: list[subprocess.Popen] = []
        self.folder = tempfile.mkdtemp(prefix="map-scale-cluster-")
        self.address = ""

    def __enter__(self) -> Cluster:
        dask = os.path.join(os.path.dirname(sys.executable), "dask")
        scheduler_file = os.path.join(self.folder, "scheduler.json")
        log = open(os.path.join(self.folder, "cluster.log"), "w")
        start = {"stdout": log, "stderr": subprocess.STDOUT, "cwd": self.folder}
        try:
            self.processes.append(
                subprocess.Popen(
                    [
                        *(dask, "scheduler", "--host", "127.0.0.1", "--port", "0"),
                        *("--dashboard-address", "127.0.0.1:0", "--scheduler-file", scheduler_file),
                    ],
                    **start,
                )
            )
            for _ in range(self.workers):
                self.processes.append(
                    subprocess.Popen(
                        [
                            *(dask, "worker", "--scheduler-file", scheduler_file),
                            *("--nthreads", str(self.threads), "--host", "127.0.0.1"),
                            *("--no-dashboard", "--no-nanny"),
                        ],
                        **start,
                    )
                )
            from distributed import Client

            deadline = time.monotonic() + 60
            while not os.path.exists(scheduler_file) and time.monotonic() < deadline:
                time.sleep(0.1)
            with Client(scheduler_file=scheduler_file, set_as_default=False) as client:
                client.wait_for_workers(self.workers, timeout=60)
                self.address = client.scheduler.address
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def pids(self) -> dict[str, int]:
        names = ["scheduler"] + [f"worker{i}" for i in range(self.workers)]
        return {name: process.pid for name, process in zip(names, self.processes, strict=False)}

    def __exit__(self, *exc_info: object) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per run")
    parser.add_argument(
        "--no-report", action="store_true", help="runnable_dask without its performance report"
    )
    parser.add_argument("--child", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "ours":
            result = child_ours(args.n[0], args.address, args.tracemalloc, not args.no_report)
        else:
            result = child_bare(args.n[0], args.address, args.tracemalloc)
        print(json.dumps(result))
        return

    rows = []
    with Cluster() as cluster:
        print(f"cluster {cluster.address}: {cluster.pids}", flush=True)
        for n in args.n:
            measured = {}
            for kind in ("bare", "ours"):
                report = not args.no_report
                measured[kind] = _child(kind, n, cluster.address, False, args.timeout, report)
                if args.tracemalloc:
                    traced = _child(kind, n, cluster.address, True, args.timeout, report)
                    measured[kind]["traced"] = traced["traced"]
                print(f"N={n} {kind}: {json.dumps(measured[kind])}", flush=True)
            rows.append((n, measured["ours"], measured["bare"]))

    print()
    report = "without" if args.no_report else "with"
    print(
        f"{os.cpu_count()} cores; scheduler + 2 workers x 4 threads (processes), by address; "
        f"runnable_dask {report} its performance report"
    )
    header = "| N | runnable_dask s | bare Dask s | ratio | driver peak RSS ours / bare MB |"
    if args.tracemalloc:
        header += " traced peak ours / bare MB |"
    print(header)
    print("| --- " * (header.count("|") - 1) + "|")
    for n, ours, bare in rows:
        line = (
            f"| {n} | {ours['seconds']:.2f} | {bare['seconds']:.2f} "
            f"| {ours['seconds'] / bare['seconds']:.1f}x "
            f"| {ours['peak_rss']:.0f} / {bare['peak_rss']:.0f} "
            f"(before run {ours['rss_before']:.0f} / {bare['rss_before']:.0f}) |"
        )
        if args.tracemalloc:
            line += f" {ours['traced']:.1f} / {bare['traced']:.1f} |"
        print(line)


if __name__ == "__main__":
    main()
