"""The Dask graph a pipeline lowers to, as a Dask collection: what Dask's own tools show."""

from __future__ import annotations

import shutil
from pathlib import Path

import dask
import pytest
from dask.delayed import Delayed
from dask.utils import key_split

from runnable_dask import Map, Parallel, Pipeline, PythonTask, Stub
from runnable_dask.dask_graph import to_delayed


def hello() -> None:
    print("hello")


def branch() -> Pipeline:
    return Pipeline(steps=[Stub(name="prepare"), PythonTask(name="train", function=hello)])


def nested() -> Pipeline:
    inner = Pipeline(steps=[Parallel(name="inner", branches={"x": branch(), "y": branch()})])
    return Pipeline(
        steps=[Parallel(name="outer", branches={"a": inner, "b": inner}), Stub(name="report")]
    )


def test_the_graph_is_a_delayed_with_a_task_per_step_and_a_layer_per_branch() -> None:
    graph = to_delayed(nested())
    assert isinstance(graph, Delayed)
    names = [key_split(key) for key in graph.dask]
    assert names.count("train") == 4 and names.count("prepare") == 4
    assert names.count("report") == 1
    assert set(graph.dask.layers) == {
        "outer.a.inner.x",
        "outer.a.inner.y",
        "outer.a",
        "outer.b.inner.x",
        "outer.b.inner.y",
        "outer.b",
        "pipeline",
    }
    graph.dask.validate()  # layers, their dependencies and keys agree
    # The run's end depends, through the joins, on every step of every branch.
    trains = {key for key in graph.dask if key_split(key) == "train"}
    reachable, pending = set(), [graph.key]
    while pending:
        key = pending.pop()
        for dep in graph.dask.key_dependencies.get(key, ()):
            if dep not in reachable:
                reachable.add(dep)
                pending.append(dep)
    assert trains <= reachable


def test_a_maps_items_are_not_in_the_first_graph(workdir: Path) -> None:
    (workdir / "params.yaml").write_text("xs: [1, 2, 3]\n", encoding="utf-8")
    mapped = Pipeline(
        steps=[
            Map(
                name="squares",
                branch=Pipeline(steps=[PythonTask(name="square", function=hello)]),
                iterate_on="xs",
                iterate_as="x",
            )
        ]
    )
    graph = to_delayed(mapped, parameters_file="params.yaml")
    names = {key_split(key) for key in graph.dask}
    assert "square" not in names  # lowered at run time, once the list is known
    assert "squares" in names


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not on PATH")
def test_dask_visualize_draws_it(tmp_path: Path) -> None:
    pytest.importorskip("graphviz", reason="dask.visualize needs the graphviz package")
    target = tmp_path / "graph.svg"
    dask.visualize(to_delayed(nested()), filename=str(target))
    drawn = target.read_text(encoding="utf-8")
    assert "train" in drawn and "report" in drawn
