"""The benchmark's workloads, each twice: a pipeline and the same shape as a bare Dask graph.

Pipelines are built with the SDK module passed in (``runnable_dask``, or ``runnable``
0.50.0 in its own interpreter, where this module is imported too), so this module needs
only the standard library. Task bodies are module-level functions: runnable imports them
by dotted path and Dask pickles them by reference, the same for both columns.

Bare graphs are plain dicts of tuple tasks with keys made unique for each call
(``<name>-<i>-<tag>``), so no run reuses a result the scheduler still holds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

SLEEP = 0.5
SPIN = 3_000_000  # loop turns: about 0.2 s of pure Python on a 2-core VM

Graph = dict[str, tuple[Any, ...]]


# --- task bodies ---------------------------------------------------------------------


def noop() -> None:
    return None


def nap() -> None:
    time.sleep(SLEEP)


def spin() -> int:
    """CPU-bound work that holds the GIL: only separate processes run two at once."""
    total = 0
    for i in range(SPIN):
        total += i * i
    return total


def make_items(n: int) -> list[int]:
    return list(range(n))


def inc(x: int) -> int:
    return x + 1


def inc_item(items: list[int], index: int) -> int:
    return items[index] + 1


def gather(*values: Any) -> list[Any]:
    return list(values)


def after(_: Any) -> None:
    return None


# --- pipelines -----------------------------------------------------------------------


def chain(sdk: ModuleType, n: int) -> Any:
    """``n`` steps in a row."""
    return sdk.Pipeline(steps=[sdk.PythonTask(name=f"step{i}", function=noop) for i in range(n)])


def _three_steps(sdk: ModuleType) -> Any:
    return sdk.Pipeline(steps=[sdk.PythonTask(name=f"s{i}", function=noop) for i in range(3)])


def wide(sdk: ModuleType, n: int) -> Any:
    """A Parallel of ``n`` branches of three steps each."""
    branches = {f"b{i}": _three_steps(sdk) for i in range(n)}
    return sdk.Pipeline(steps=[sdk.Parallel(name="wide", branches=branches)])


def map_list(sdk: ModuleType, n: int, batch_size: int | None = None) -> Any:
    """A step returns ``list(range(n))`` (``n`` is a parameter); a Map adds one to each
    item; the default reducer makes the list of results. ``batch_size``: items per Dask
    task (runnable_dask only)."""
    branch = sdk.Pipeline(steps=[sdk.PythonTask(name="inc", function=inc, returns=["y"])])
    batched = {"batch_size": batch_size} if batch_size else {}
    return sdk.Pipeline(
        steps=[
            sdk.PythonTask(name="make", function=make_items, returns=["items"]),
            sdk.Map(name="sweep", branch=branch, iterate_on="items", iterate_as="x", **batched),
        ]
    )


def _fanout(sdk: ModuleType, n: int, body: Callable[[], Any]) -> Any:
    branches = {
        f"b{i}": sdk.Pipeline(steps=[sdk.PythonTask(name="work", function=body)]) for i in range(n)
    }
    return sdk.Pipeline(steps=[sdk.Parallel(name="fan", branches=branches)])


def fanout_sleep(sdk: ModuleType, n: int) -> Any:
    """``n`` branches that each sleep ``SLEEP`` seconds."""
    return _fanout(sdk, n, nap)


def fanout_cpu(sdk: ModuleType, n: int) -> Any:
    """``n`` branches that each run ``spin`` (CPU-bound, pure Python)."""
    return _fanout(sdk, n, spin)


def nested(sdk: ModuleType, n: int) -> Any:
    """A Parallel of ``n`` branches, each a Parallel of ``n`` branches that sleep."""
    branches = {
        f"o{i}": sdk.Pipeline(steps=[sdk.Parallel(name="inner", branches=_naps(sdk, n))])
        for i in range(n)
    }
    return sdk.Pipeline(steps=[sdk.Parallel(name="outer", branches=branches)])


def _naps(sdk: ModuleType, n: int) -> dict[str, Any]:
    return {
        f"b{i}": sdk.Pipeline(steps=[sdk.PythonTask(name="nap", function=nap)]) for i in range(n)
    }


# --- the same shapes on bare Dask ----------------------------------------------------


def bare_chain(n: int, tag: str) -> tuple[Graph, str]:
    graph: Graph = {f"step-0-{tag}": (noop,)}
    for i in range(1, n):
        graph[f"step-{i}-{tag}"] = (after, f"step-{i - 1}-{tag}")
    return graph, f"step-{n - 1}-{tag}"


def bare_wide(n: int, tag: str) -> tuple[Graph, str]:
    graph: Graph = {}
    for b in range(n):
        graph[f"s0-{b}-{tag}"] = (noop,)
        graph[f"s1-{b}-{tag}"] = (after, f"s0-{b}-{tag}")
        graph[f"s2-{b}-{tag}"] = (after, f"s1-{b}-{tag}")
    graph[f"wide-{tag}"] = (gather, *[f"s2-{b}-{tag}" for b in range(n)])
    return graph, f"wide-{tag}"


def bare_map_list(n: int, tag: str) -> tuple[Graph, str]:
    graph: Graph = {f"make-{tag}": (make_items, n)}
    for i in range(n):
        graph[f"inc-{i}-{tag}"] = (inc_item, f"make-{tag}", i)
    graph[f"sweep-{tag}"] = (gather, *[f"inc-{i}-{tag}" for i in range(n)])
    return graph, f"sweep-{tag}"


def _bare_fanout(n: int, tag: str, body: Callable[[], Any]) -> tuple[Graph, str]:
    graph: Graph = {f"work-{i}-{tag}": (body,) for i in range(n)}
    graph[f"fan-{tag}"] = (gather, *[f"work-{i}-{tag}" for i in range(n)])
    return graph, f"fan-{tag}"


def bare_fanout_sleep(n: int, tag: str) -> tuple[Graph, str]:
    return _bare_fanout(n, tag, nap)


def bare_fanout_cpu(n: int, tag: str) -> tuple[Graph, str]:
    return _bare_fanout(n, tag, spin)


def bare_nested(n: int, tag: str) -> tuple[Graph, str]:
    graph: Graph = {f"nap-{i}-{tag}": (nap,) for i in range(n * n)}
    for o in range(n):
        naps = [f"nap-{o * n + i}-{tag}" for i in range(n)]
        graph[f"inner-{o}-{tag}"] = (gather, *naps)
    graph[f"outer-{tag}"] = (gather, *[f"inner-{o}-{tag}" for o in range(n)])
    return graph, f"outer-{tag}"


# --- the catalogue -------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One shape at one size: its pipeline, its bare graph, and what it needs to run."""

    kind: str
    n: int

    @property
    def label(self) -> str:
        return f"nested {self.n}x{self.n}" if self.kind == "nested" else f"{self.kind} {self.n}"

    @property
    def steps(self) -> int:
        """Steps that run: what the per-step overhead is divided by."""
        return {"chain": self.n, "wide": 3 * self.n, "map": self.n + 1}.get(self.kind, self.n)

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters file's content (the map's length is a parameter)."""
        return {"n": self.n} if self.kind == "map" else {}

    def pipeline(self, sdk: ModuleType) -> Any:
        return _SHAPES[self.kind][0](sdk, self.n)

    def bare(self) -> tuple[Graph, str]:
        """The bare graph under fresh keys, and the key whose result ends it."""
        return _SHAPES[self.kind][1](self.n, uuid.uuid4().hex[:12])


_SHAPES: dict[str, tuple[Callable[[ModuleType, int], Any], Callable[[int, str], tuple[Graph, str]]]]
_SHAPES = {
    "chain": (chain, bare_chain),
    "wide": (wide, bare_wide),
    "map": (map_list, bare_map_list),
    "fanout_sleep": (fanout_sleep, bare_fanout_sleep),
    "fanout_cpu": (fanout_cpu, bare_fanout_cpu),
    "nested": (nested, bare_nested),
}
KINDS = tuple(_SHAPES)
