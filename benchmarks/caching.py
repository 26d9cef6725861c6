"""What step caching costs and saves, measured side by side in one process.

- ``wide N, cache``: a Parallel of N branches of three steps, every step cached and each
  with a key of its own (a partial of its position), run without caching, then with
  caching into a fresh cache (every step a miss, its entry written), then again (every
  step a hit). Targets: the first cached run at most 1.2x the uncached one; the run of
  hits faster than the first.
- ``ml_sweep``: ``examples/ml_sweep`` (12 configurations, 5 folds) into a fresh cache,
  then unchanged. Target: the rerun at most 15% of the first run's time.

Both sides of each comparison run in turn (uncached, first, again, uncached, ...), and
each repetition's first run starts from an empty cache. Beside wall time, the ratio
column gives the ratio of this process's CPU time (best of the repeats, like the wall
time): on a shared machine it moves less with the load than the wall time does. With
the ``dask`` executor this process is only the driving one.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from distributed import Client

import runnable_dask
from benchmarks import runs
from benchmarks.processes import copy_examples
from benchmarks.report import Row, seconds, target
from benchmarks.timing import best_of


def step(branch: int, position: int) -> None:
    """A trivial step; its arguments make each step's cache key its own."""


def cached_wide(n: int, cache: bool) -> Any:
    """A Parallel of ``n`` branches of three steps, each with ``cache``."""
    sdk = runnable_dask

    def branch(b: int) -> Any:
        return sdk.Pipeline(
            steps=[
                sdk.PythonTask(name=f"s{i}", function=functools.partial(step, b, i), cache=cache)
                for i in range(3)
            ]
        )

    return sdk.Pipeline(
        steps=[sdk.Parallel(name="wide", branches={f"b{b}": branch(b) for b in range(n)})]
    )


class FreshCache:
    """Configuration files that differ only in their cache location: ``first`` makes a new
    one (an empty cache), ``again`` reuses the last one made."""

    def __init__(self, base: Path, folder: Path) -> None:
        self.settings = yaml.safe_load(base.read_text(encoding="utf-8"))
        self.folder = folder
        self.current: Path | None = None

    def first(self) -> Path:
        name = uuid.uuid4().hex[:8]
        path = self.folder / f"cached-{name}.yaml"
        settings = {**self.settings, "cache": {"location": str(self.folder / f"cache-{name}")}}
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self.current = path
        return path

    def again(self) -> Path:
        assert self.current is not None, "run first() before again()"
        return self.current


def compare(
    label: str, executor: str, config: Path, scratch: Path, repeat: int, pipelines: Any
) -> tuple[dict[str, float], list[Row]]:
    """Best seconds of the uncached run, the first cached run and the run of hits."""
    uncached, cached, parameters = pipelines
    fresh = FreshCache(config, scratch)
    cpu: dict[str, float] = {}
    best = best_of(
        repeat,
        {
            "uncached": _cpu(cpu, "uncached", lambda: runs.run_ours(uncached, config, parameters)),
            "first": _cpu(cpu, "first", lambda: runs.run_ours(cached, fresh.first(), parameters)),
            "again": _cpu(cpu, "again", lambda: runs.run_ours(cached, fresh.again(), parameters)),
        },
    )

    def ratios(of: str, to: str) -> str:
        return f"{best[of] / best[to]:.2f}x (CPU {cpu[of] / cpu[to]:.2f}x)"

    return best, [
        Row(label, executor, seconds(best["uncached"]), target="without caching"),
        Row(
            label,
            executor,
            seconds(best["first"]),
            seconds(best["uncached"]),
            ratios("first", "uncached"),
            target=target(
                "first cached run <= 1.2x uncached", best["first"] <= 1.2 * best["uncached"]
            ),
        ),
        Row(
            label,
            executor,
            seconds(best["again"]),
            seconds(best["first"]),
            ratios("again", "first"),
            target=target("all hits faster than the first run", best["again"] < best["first"]),
        ),
    ]


def _cpu(best: dict[str, float], name: str, run: Callable[[], object]) -> Callable[[], None]:
    """``run``, keeping its least CPU time of this process in ``best[name]``."""

    def timed() -> None:
        began = time.process_time()
        run()
        best[name] = min(best.get(name, float("inf")), time.process_time() - began)

    return timed


def wide_rows(n: int, repeat: int, scratch: Path, clusters: list[tuple[str, Path]]) -> list[Row]:
    """The cached wide workload on each (executor label, configuration) given."""
    rows: list[Row] = []
    pipelines = (cached_wide(n, cache=False), cached_wide(n, cache=True), "")
    for executor, config in clusters:
        runs.run_ours(cached_wide(8, cache=True), FreshCache(config, scratch).first())  # warm
        _, measured = compare(f"wide {n}, cache", executor, config, scratch, repeat, pipelines)
        rows.extend(measured)
    return rows


def sweep_rows(repeat: int, scratch: Path, executor: str, config: Path) -> list[Row]:
    """The ml_sweep example: a first run into an empty cache, then the same again."""
    project = copy_examples(scratch / "sweep-project", "runnable_dask")
    sys.path.insert(0, str(project))
    previous = Path.cwd()
    try:
        os.chdir(project)
        from examples.ml_sweep.sweep import HEAVY, PARAMETERS, build

        offer_resources(config, HEAVY)
        pipeline = build()
        fresh = FreshCache(config, scratch)
        best = best_of(
            repeat,
            {
                "first": lambda: runs.run_ours(pipeline, fresh.first(), PARAMETERS),
                "again": lambda: _all_fits_cached(
                    runs.run_ours(pipeline, fresh.again(), PARAMETERS)
                ),
            },
        )
    finally:
        os.chdir(previous)
        sys.path.remove(str(project))
    share = best["again"] / best["first"]
    return [
        Row(
            "ml_sweep (12 fits), first run", executor, seconds(best["first"]), target="empty cache"
        ),
        Row(
            "ml_sweep, unchanged rerun",
            executor,
            seconds(best["again"]),
            seconds(best["first"]),
            f"{share:.0%} of the first",
            target=target("<= 15% of the first run; every fit cached", share <= 0.15),
        ),
    ]


def offer_resources(config: Path, wanted: dict[str, dict[str, float]]) -> None:
    """Give each worker of the configuration's cluster enough of the resources the sweep's
    steps ask for to run one per thread, as a user's cluster for the sweep would (the
    LocalCluster a run starts for itself does this; a cluster given by address does not,
    and the fits asking for them would wait for ever)."""
    address = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline-executor"]["config"]
    totals: dict[str, float] = {}
    for resources in wanted.values():
        for name, amount in resources.items():
            totals[name] = max(totals.get(name, 0.0), amount)

    async def offer(dask_worker: Any) -> None:
        threads = dask_worker.state.nthreads
        await dask_worker.set_resources(**{n: a * threads for n, a in totals.items()})

    with Client(address["address"], set_as_default=False) as client:
        client.run(offer)


def _all_fits_cached(run_log: Any) -> None:
    fits = [s for s in run_log.walk() if s.name == "fit"]
    missed = [s.internal_name for s in fits if s.attempts[-1].cached_from is None]
    if missed or not fits:
        raise RuntimeError(f"the rerun fitted {missed or 'nothing'}: the cache missed")
