"""The Dask graph: one task per step, readable keys, and user strings never read as keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dask.utils import key_split

from runnable_dask import Parallel, Pipeline, PythonTask, ShellTask, Stub
from runnable_dask.lower import Lowering
from runnable_dask.plan import build_plan
from runnable_dask.runtime.context import RunContext
from runnable_dask.runtime.node import run_step_and_end


def graph_for(pipeline: Pipeline, run_id: str = "run-1") -> tuple[dict[str, Any], str]:
    ctx = RunContext(run_id=run_id, catalog_location=".catalog", reporter=lambda events: None)
    part, end = Lowering(build_plan(pipeline), ctx).first({})
    return part.tasks, end


def step_keys(graph: dict[str, Any]) -> dict[str, str]:
    """Internal name -> key, for every task that runs a step."""
    found = {}
    for key, task in graph.items():
        call = task[2] if isinstance(task, tuple) and len(task) > 2 else None
        node = getattr(call, "node", None)
        if node is not None:
            found[node.internal_name] = key
    return found


def test_one_task_per_step_and_one_end_per_pipeline(fan_out_fan_in: Pipeline) -> None:
    graph, end = graph_for(fan_out_fan_in)
    steps = ["split", "fan", "fan.a.scale", "fan.b.scale", "fan.c.scale", "join"]
    ends = 1  # the root pipeline's; a branch of one step ends in that step's own task
    # The initial parameters travel as an argument of the first step, not as a task.
    assert len(graph) == len(steps) + ends
    assert sorted(step_keys(graph)) == sorted(steps)
    assert end in graph
    assert key_split(end) == "pipeline"


def test_a_branch_of_steps_in_a_row_ends_in_its_last_steps_task() -> None:
    branch = Pipeline(steps=[Stub(name="first"), Stub(name="second")])
    graph, _ = graph_for(Pipeline(steps=[Parallel(name="fan", branches={"a": branch})]))
    # steps: fan, first, second; ends: the root's only
    assert len(graph) == 3 + 1
    assert graph[step_keys(graph)["fan.a.second"]][0] is run_step_and_end


def test_a_branch_with_a_failure_path_has_its_own_end_task() -> None:
    recover = Pipeline(steps=[Stub(name="recover")])
    branch = Pipeline(steps=[Stub(name="first", on_failure=recover), Stub(name="second")])
    graph, _ = graph_for(Pipeline(steps=[Parallel(name="fan", branches={"a": branch})]))
    # steps: fan, first, second, recover; ends: the root's and the branch's
    assert len(graph) == 4 + 2


def test_nested_pipeline_counts() -> None:
    inner = Pipeline(steps=[Stub(name="leaf"), Stub(name="leaf2")])
    middle = Pipeline(steps=[Parallel(name="inner", branches={"y": inner, "z": inner})])
    outer = Pipeline(steps=[Stub(name="s"), Parallel(name="outer", branches={"x": middle})])
    graph, _ = graph_for(outer)
    # steps: s, outer, outer.x.inner, 2 x (leaf, leaf2); ends: root, x (y and z end in leaf2)
    assert len(graph) == 7 + 2
    assert "outer.x.inner.z.leaf2" in step_keys(graph)


def test_a_parallel_s_join_carries_its_branches_names_not_their_definitions() -> None:
    branches = {f"b{i}": Pipeline(steps=[Stub(name="s0"), Stub(name="s1")]) for i in range(100)}
    graph, _ = graph_for(Pipeline(steps=[Parallel(name="wide", branches=branches)]))
    node = graph[step_keys(graph)["wide"]][2].node

    assert [branch.key for branch in node.branches] == list(branches)
    assert all(branch.nodes == () for branch in node.branches)
    assert node.step is None  # the Parallel holds every branch's pipeline: none travels


def test_key_split_of_each_step_key_is_the_step_name(fan_out_fan_in: Pipeline) -> None:
    pipeline = Pipeline(
        steps=[
            Stub(name="hello_python"),
            Stub(name="step 1"),
            Stub(name="Train2"),
            fan_out_fan_in.steps[1],
        ]
    )
    graph, _ = graph_for(pipeline)
    for internal_name, key in step_keys(graph).items():
        assert key_split(key) == internal_name.rsplit(".", 1)[-1], key


def test_keys_differ_between_run_ids(fan_out_fan_in: Pipeline) -> None:
    first, _ = graph_for(fan_out_fan_in, run_id="run-1")
    second, _ = graph_for(fan_out_fan_in, run_id="run-2")
    assert not set(first) & set(second)
    assert graph_for(fan_out_fan_in, run_id="run-1")[0].keys() == first.keys()


def test_steps_with_the_same_name_in_different_branches_get_different_keys(
    fan_out_fan_in: Pipeline,
) -> None:
    keys = step_keys(graph_for(fan_out_fan_in)[0])
    assert len({keys["fan.a.scale"], keys["fan.b.scale"], keys["fan.c.scale"]}) == 3


def test_a_parameter_equal_to_a_key_reaches_the_step_unchanged(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def echo(target: str, first: Any) -> None:
        seen["target"], seen["first"] = target, first

    pipeline = Pipeline(
        steps=[
            Stub(name="first"),
            Stub(name="pipeline"),
            PythonTask(name="parameters", function=echo),
        ]
    )
    graph, end = graph_for(pipeline, run_id="test-run")
    first_key = step_keys(graph)["first"]
    # Parameters whose values are the keys of other tasks of this very graph (and a
    # parameter named like a step): Dask must not replace them with those tasks' results.
    monkeypatch.setenv("RUNNABLE_PRM_target", first_key)
    monkeypatch.setenv("RUNNABLE_PRM_first", end)
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert seen == {"target": first_key, "first": end}


def test_a_step_named_like_a_parameter_value_runs_normally(run: Any, workdir: Path) -> None:
    def produce() -> str:
        return "consume"

    def consume(name: str) -> str:
        return name + "!"

    pipeline = Pipeline(
        steps=[
            PythonTask(name="produce", function=produce, returns=["name"]),
            PythonTask(name="consume", function=consume, returns=["shout"]),
            ShellTask(name="shout", command='test "$shout" = "consume!"'),
        ]
    )
    run_log = run(pipeline)
    assert run_log.parameters["shout"].value == "consume!"
    assert [s.status for s in run_log.steps.values()] == ["SUCCESS"] * 4


def test_end_keys_are_named_after_their_branch() -> None:
    recover = Pipeline(steps=[Stub(name="recover")])
    branch = Pipeline(steps=[Stub(name="first", on_failure=recover), Stub(name="second")])
    pipeline = Pipeline(steps=[Parallel(name="fan", branches={"a": branch, "b": branch})])
    graph, end = graph_for(pipeline)
    ends = sorted(key_split(k) for k in set(graph) - set(step_keys(graph).values()))
    assert ends == ["a", "b", "pipeline"]
    assert key_split(end) == "pipeline"


def test_initial_parameters_reach_the_first_step(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def first(x: int) -> int:
        return x * 2

    monkeypatch.setenv("RUNNABLE_PRM_x", "21")
    run_log = run(Pipeline(steps=[PythonTask(name="first", function=first, returns=["y"])]))
    assert (run_log.parameters["y"].kind, run_log.parameters["y"].value) == ("json", 42)
