"""The plan: internal names, where each step goes next, and a stable definition hash."""

from __future__ import annotations

import pytest

from runnable_dask import (
    Fail,
    Parallel,
    Pipeline,
    PythonTask,
    ShellTask,
    Stub,
    Success,
)
from runnable_dask.plan import Node, Plan, build_plan


def nodes_by_name(plan: Plan) -> dict[str, Node]:
    return {node.internal_name: node for _, node in plan.nodes()}


def work() -> None:
    return None


def other_work() -> None:
    return None


def test_internal_names_alternate_step_and_branch(fan_out_fan_in: Pipeline) -> None:
    plan = build_plan(fan_out_fan_in)
    assert list(nodes_by_name(plan)) == [
        "split",
        "fan",
        "fan.a.scale",
        "fan.a.success",
        "fan.a.fail",
        "fan.b.scale",
        "fan.b.success",
        "fan.b.fail",
        "fan.c.scale",
        "fan.c.success",
        "fan.c.fail",
        "join",
        "success",
        "fail",
    ]


def test_nested_branches_have_dotted_internal_names() -> None:
    inner = Pipeline(steps=[Stub(name="leaf")])
    middle = Pipeline(steps=[Parallel(name="inner", branches={"y": inner})])
    outer = Pipeline(steps=[Parallel(name="outer", branches={"x": middle})])
    names = nodes_by_name(build_plan(outer))
    assert "outer.x.inner.y.leaf" in names
    assert names["outer.x.inner.y.leaf"].name == "leaf"
    assert names["outer.x.inner.y.leaf"].on_success == "outer.x.inner.y.success"


def test_steps_go_to_the_next_step_and_fail_to_the_fail_terminal(linear: Pipeline) -> None:
    nodes = nodes_by_name(build_plan(linear))
    routes = {name: (n.on_success, n.on_failure) for name, n in nodes.items() if n.kind == "task"}
    assert routes == {
        "first": ("second", "fail"),
        "second": ("third", "fail"),
        "third": ("success", "fail"),
    }


def test_branch_steps_route_to_their_own_branch_terminals(fan_out_fan_in: Pipeline) -> None:
    nodes = nodes_by_name(build_plan(fan_out_fan_in))
    assert (nodes["fan.b.scale"].on_success, nodes["fan.b.scale"].on_failure) == (
        "fan.b.success",
        "fan.b.fail",
    )
    assert (nodes["fan"].on_success, nodes["fan"].on_failure) == ("join", "fail")


def test_on_failure_routes_to_the_first_step_of_the_failure_pipeline() -> None:
    handler = Pipeline(steps=[Stub(name="notify"), Stub(name="cleanup")])
    pipeline = Pipeline(
        steps=[PythonTask(name="train", function=work, on_failure=handler), Stub(name="deploy")]
    )
    nodes = nodes_by_name(build_plan(pipeline))
    assert (nodes["train"].on_success, nodes["train"].on_failure) == ("deploy", "notify")
    assert nodes["notify"].on_success == "cleanup"
    assert nodes["cleanup"].on_success == "success"


def test_on_failure_pipeline_ending_with_failure_routes_to_fail() -> None:
    handler = Pipeline(steps=[Stub(name="notify", terminate_with_failure=True)])
    pipeline = Pipeline(steps=[PythonTask(name="train", function=work, on_failure=handler)])
    nodes = nodes_by_name(build_plan(pipeline))
    assert nodes["train"].on_failure == "notify"
    assert nodes["notify"].on_success == "fail"


def test_terminate_flags_route_the_last_step() -> None:
    succeeding = Pipeline(steps=[Stub(name="a"), Stub(name="b", terminate_with_success=True)])
    failing = Pipeline(steps=[Stub(name="a"), Stub(name="b", terminate_with_failure=True)])
    assert nodes_by_name(build_plan(succeeding))["b"].on_success == "success"
    assert nodes_by_name(build_plan(failing))["b"].on_success == "fail"


def test_success_and_fail_steps_become_the_terminals() -> None:
    succeeding = build_plan(Pipeline(steps=[Stub(name="a"), Success(name="done")]))
    assert nodes_by_name(succeeding)["a"].on_success == "done"
    assert nodes_by_name(succeeding)["done"].kind == "success"

    failing = build_plan(Pipeline(steps=[Stub(name="a"), Fail(name="stop")]))
    assert nodes_by_name(failing)["a"].on_success == "stop"
    assert nodes_by_name(failing)["stop"].kind == "fail"


def shell_pipeline(command: str) -> Pipeline:
    return Pipeline(
        steps=[
            Stub(name="start"),
            Parallel(
                name="fan",
                branches={"a": Pipeline(steps=[ShellTask(name="sh", command=command)])},
            ),
        ]
    )


def test_dag_hash_is_stable_across_builds(fan_out_fan_in: Pipeline) -> None:
    assert (
        build_plan(shell_pipeline("echo 1")).dag_hash
        == build_plan(shell_pipeline("echo 1")).dag_hash
    )
    assert build_plan(fan_out_fan_in).dag_hash == build_plan(fan_out_fan_in).dag_hash


def test_dag_hash_changes_when_a_command_changes() -> None:
    assert (
        build_plan(shell_pipeline("echo 1")).dag_hash
        != build_plan(shell_pipeline("echo 2")).dag_hash
    )


def test_dag_hash_changes_when_a_function_or_return_changes() -> None:
    def pipeline(function: object, returns: list[str]) -> Pipeline:
        return Pipeline(steps=[PythonTask(name="t", function=function, returns=returns)])

    base = build_plan(pipeline(work, ["x"])).dag_hash
    assert build_plan(pipeline(other_work, ["x"])).dag_hash != base
    assert build_plan(pipeline(work, ["y"])).dag_hash != base


def test_dag_hash_changes_when_the_order_changes() -> None:
    forward = Pipeline(steps=[Stub(name="a"), Stub(name="b")])
    backward = Pipeline(steps=[Stub(name="b"), Stub(name="a")])
    assert build_plan(forward).dag_hash != build_plan(backward).dag_hash


@pytest.mark.parametrize("fail", [Fail(name="stop"), Fail()], ids=["named", "default"])
def test_a_pipeline_that_is_only_a_fail_step_starts_at_it(fail: Fail) -> None:
    plan = build_plan(Pipeline(steps=[fail]))
    kinds = {node.internal_name: node.kind for node in plan.root.nodes}
    assert plan.root.entry == fail.name
    assert kinds[fail.name] == "fail"
