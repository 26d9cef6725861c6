"""Side-by-side timings: runnable_dask against the same graph shape on bare Dask.

Run from the repository root: ``python benchmarks/bench.py [--repeat 3]``. Every workload
runs on the same scheduler for both columns, in this one process, and the table shows
the best of ``--repeat`` runs and the ratio to bare Dask. Nothing here is asserted:
tests never time; this prints.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable

import dask
import yaml
from distributed import Client, LocalCluster
from rich.console import Console
from rich.table import Table

from runnable_dask import Parallel, Pipeline, PythonTask
from runnable_dask.console import RunConsole

SLEEP = 0.5


def nap() -> None:
    time.sleep(SLEEP)


def noop() -> None:
    return None


def _branches(n: int, make: Callable[[], Pipeline]) -> dict[str, Pipeline]:
    return {f"b{i}": make() for i in range(n)}


def fanout_sleep(n: int) -> Pipeline:
    one = lambda: Pipeline(steps=[PythonTask(name="nap", function=nap)])  # noqa: E731
    return Pipeline(steps=[Parallel(name="fan", branches=_branches(n, one))])


def nested_sleep(n: int) -> Pipeline:
    leaf = lambda: Pipeline(steps=[PythonTask(name="nap", function=nap)])  # noqa: E731
    inner = lambda: Pipeline(  # noqa: E731
        steps=[Parallel(name="inner", branches=_branches(n, leaf))]
    )
    return Pipeline(steps=[Parallel(name="outer", branches=_branches(n, inner))])


def chain(n: int) -> Pipeline:
    return Pipeline(steps=[PythonTask(name=f"step{i}", function=noop) for i in range(n)])


def _join(*_: object) -> None:
    return None


def _after(_: object) -> None:
    return None


def bare_fanout(n: int) -> tuple[dict, str]:
    graph: dict = {f"nap-{i}": (nap,) for i in range(n)}
    graph["join-0"] = (_join, *[f"nap-{i}" for i in range(n)])
    return graph, "join-0"


def bare_nested(n: int) -> tuple[dict, str]:
    graph: dict = {f"nap-{i}": (nap,) for i in range(n * n)}
    for outer in range(n):
        graph[f"inner-{outer}"] = (_join, *[f"nap-{outer * n + i}" for i in range(n)])
    graph["outer-0"] = (_join, *[f"inner-{i}" for i in range(n)])
    return graph, "outer-0"


def bare_chain(n: int) -> tuple[dict, str]:
    graph: dict = {"step-0": (noop,)}
    for i in range(1, n):
        graph[f"step-{i}"] = (_after, f"step-{i - 1}")
    return graph, f"step-{n - 1}"


def _fresh(graph: dict, key: str) -> tuple[dict, str]:
    """The same graph under new keys, so no run reuses a result held by the scheduler."""
    tag = f"-{time.perf_counter_ns()}"

    def rename(value: object) -> object:
        if isinstance(value, str) and value in graph:
            return value + tag
        if isinstance(value, tuple):
            return tuple(rename(v) for v in value)
        return value

    return {k + tag: rename(v) for k, v in graph.items()}, key + tag


def _best(repeat: int, run: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        timings.append(time.perf_counter() - began)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chain", type=int, default=200)
    args = parser.parse_args()

    quiet = RunConsole(Console(file=open(os.devnull, "w")))  # noqa: SIM115
    workdir = tempfile.mkdtemp(prefix="runnable-dask-bench-")
    os.chdir(workdir)
    rows: list[tuple[str, str, float, float]] = []
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=4,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):

        def dask_config(report: bool) -> str:
            path = os.path.join(workdir, f"dask-report-{report}.yaml")
            with open(path, "w") as handle:
                yaml.safe_dump(
                    {
                        "pipeline-executor": {
                            "type": "dask",
                            "config": {
                                "address": cluster.scheduler_address,
                                "performance_report": report,
                            },
                        }
                    },
                    handle,
                )
            return path

        local_config = os.path.join(workdir, "local.yaml")
        with open(local_config, "w") as handle:
            yaml.safe_dump({"pipeline-executor": {"type": "local"}}, handle)

        from runnable_dask import driver

        def ours(pipeline: Pipeline, config: str) -> Callable[[], object]:
            def run() -> object:
                driver.RunConsole = lambda: quiet  # keep the table readable
                return pipeline.execute(configuration_file=config)

            return run

        workloads = [
            ("fanout_sleep 8", fanout_sleep(8), bare_fanout(8)),
            ("nested 3x3", nested_sleep(3), bare_nested(3)),
            (f"chain {args.chain}", chain(args.chain), bare_chain(args.chain)),
        ]
        # The engine's own cost first; then the same fan-out keeping Dask's performance
        # report in the catalog (the default), which renders it when the run ends.
        workloads.append(("fanout_sleep 8, with report", fanout_sleep(8), bare_fanout(8)))
        for name, pipeline, (graph, key) in workloads:
            config = dask_config(report=name.endswith("with report"))
            ours_time = _best(args.repeat, ours(pipeline, config))
            bare_time = _best(args.repeat, lambda g=graph, k=key: client.get(*_fresh(g, k)))
            rows.append((name, "dask (LocalCluster 2x4, processes)", ours_time, bare_time))
        graph, key = bare_chain(args.chain)
        ours_time = _best(args.repeat, ours(chain(args.chain), local_config))
        bare_time = _best(
            args.repeat, lambda: dask.threaded.get(*_fresh(graph, key), num_workers=8)
        )
        rows.append((f"chain {args.chain}", "local (threads)", ours_time, bare_time))

    table = Table(title=f"runnable_dask vs bare Dask ({platform.node()}, {os.cpu_count()} cores)")
    for column in ("workload", "executor", "runnable_dask s", "bare Dask s", "ratio"):
        table.add_column(column)
    for name, executor, ours_time, bare_time in rows:
        table.add_row(
            name, executor, f"{ours_time:.3f}", f"{bare_time:.3f}", f"{ours_time / bare_time:.2f}x"
        )
    Console().print(table)


if __name__ == "__main__":
    main()
