"""Parallel steps: branches at once, scoped parameters, merge in branch order, nesting."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from runnable_dask import (
    ExecutionFailedError,
    Fail,
    Parallel,
    Pipeline,
    PythonTask,
    Stub,
    Success,
)

Run = Callable[..., Any]
WAIT = 10  # seconds a synchronisation may take before the test counts it as broken


def task(name: str, function: Callable[..., Any], returns: list[str] | None = None) -> PythonTask:
    return PythonTask(name=name, function=function, returns=returns or [])


def test_fan_out_fan_in(run: Run, fan_out_fan_in: Pipeline) -> None:
    run_log = run(fan_out_fan_in)
    assert run_log.parameters["total"].value == 10 * (1 + 2 + 3)
    fan = run_log.steps["fan"]
    assert (fan.status, fan.step_type, fan.attempts) == ("SUCCESS", "parallel", [])
    assert sorted(fan.branches) == ["fan.a", "fan.b", "fan.c"]
    for key in "abc":
        branch = fan.branches[f"fan.{key}"]
        assert branch.status == "SUCCESS"
        assert list(branch.steps) == [f"fan.{key}.scale", f"fan.{key}.success"]
        assert branch.parameters[f"{key}_out"].value == 10 * " abc".index(key)
    assert list(run_log.steps) == ["split", "fan", "join", "success"]


def test_branches_run_at_the_same_time(run: Run) -> None:
    barrier = threading.Barrier(4, timeout=WAIT)

    def meet() -> None:
        barrier.wait()  # passes only when all four branches are inside it together

    branches = {k: Pipeline(steps=[task("meet", meet)]) for k in "abcd"}
    run_log = run(Pipeline(steps=[Parallel(name="fan", branches=branches)]))
    assert run_log.status == "SUCCESS"
    assert not barrier.broken


def test_nested_branches_run_at_the_same_time(run: Run) -> None:
    barrier = threading.Barrier(4, timeout=WAIT)

    def meet() -> None:
        barrier.wait()

    leaf = {k: Pipeline(steps=[task("meet", meet)]) for k in "xy"}
    inner = Pipeline(steps=[Parallel(name="inner", branches=leaf)])
    outer = Pipeline(steps=[Parallel(name="outer", branches={"a": inner, "b": inner})])
    run_log = run(outer)
    assert run_log.status == "SUCCESS"
    for path in ("outer.a.inner.x.meet", "outer.a.inner.y.meet", "outer.b.inner.x.meet"):
        assert run_log.step(path).status == "SUCCESS"


def test_branches_see_parent_parameters_as_at_the_composites_start(run: Run) -> None:
    changed = threading.Event()

    def start() -> int:
        return 1

    def overwrite() -> int:
        return 100

    def announce() -> None:
        changed.set()

    def wait_for_sibling() -> None:
        assert changed.wait(WAIT), "sibling branch never ran"

    def read(x: int) -> int:
        return x

    pipeline = Pipeline(
        steps=[
            task("start", start, ["x"]),
            Parallel(
                name="fan",
                branches={
                    "writer": Pipeline(
                        steps=[task("overwrite", overwrite, ["x"]), task("announce", announce)]
                    ),
                    "reader": Pipeline(
                        steps=[task("wait", wait_for_sibling), task("read", read, ["seen"])]
                    ),
                },
            ),
        ]
    )
    run_log = run(pipeline)
    assert run_log.step("fan.reader.read").attempts[0].input_parameters["x"].value == 1
    assert run_log.parameters["seen"].value == 1
    assert run_log.parameters["x"].value == 100  # merged back after the step


def test_returns_merge_in_branch_order_and_the_last_branch_wins(run: Run) -> None:
    last_done = threading.Event()

    def make(key: str, wait_for_last: bool) -> Pipeline:
        def work() -> tuple[str, str]:
            if wait_for_last:
                assert last_done.wait(WAIT), "last branch never finished"
            else:
                last_done.set()
            return key, f"only {key}"

        return Pipeline(steps=[task("work", work, ["winner", f"{key}_value"])])

    seen: dict[str, Any] = {}

    def after(winner: str, a_value: str, b_value: str, c_value: str) -> None:
        seen.update(winner=winner, values=[a_value, b_value, c_value])

    # "c" finishes first and "a" last, yet "c" wins because it is the last branch.
    branches = {"a": make("a", True), "b": make("b", True), "c": make("c", False)}
    run(Pipeline(steps=[Parallel(name="fan", branches=branches), task("after", after)]))
    assert seen == {"winner": "c", "values": ["only a", "only b", "only c"]}


def test_branch_parameters_do_not_leak_into_siblings(run: Run) -> None:
    set_done = threading.Event()

    def set_private() -> str:
        return "mine"

    def announce() -> None:
        set_done.set()

    def wait_for_sibling() -> None:
        assert set_done.wait(WAIT), "sibling branch never ran"

    def check(private: str = "unset") -> str:
        return private

    pipeline = Pipeline(
        steps=[
            Parallel(
                name="fan",
                branches={
                    "a": Pipeline(
                        steps=[task("set", set_private, ["private"]), task("announce", announce)]
                    ),
                    "b": Pipeline(
                        steps=[task("wait", wait_for_sibling), task("check", check, ["got"])]
                    ),
                },
            )
        ]
    )
    run_log = run(pipeline)
    assert run_log.step("fan.b.check").attempts[0].output_parameters["got"].value == "unset"
    assert run_log.parameters["private"].value == "mine"


def test_a_failing_branch_does_not_stop_its_siblings(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    def fine() -> None:
        return None

    def broken() -> None:
        raise ValueError("branch b broke")

    def after() -> None:
        raise AssertionError("must not run")

    branches = {
        "a": Pipeline(steps=[task("work", fine), Stub(name="more")]),
        "b": Pipeline(steps=[task("work", broken), Stub(name="more")]),
        "c": Pipeline(steps=[task("work", fine), Stub(name="more")]),
    }
    pipeline = Pipeline(steps=[Parallel(name="fan", branches=branches), task("after", after)])
    with pytest.raises(ExecutionFailedError) as caught:
        run(pipeline)
    assert caught.value.failures == [("fan.b.work", "ValueError: branch b broke")]
    run_log = stored_run_log()
    assert run_log.status == "FAIL"
    fan = run_log.steps["fan"]
    assert fan.status == "FAIL"
    assert "b" in fan.message
    statuses = {name: branch.status for name, branch in fan.branches.items()}
    assert statuses == {"fan.a": "SUCCESS", "fan.b": "FAIL", "fan.c": "SUCCESS"}
    assert run_log.step("fan.a.more").status == "SUCCESS"
    assert run_log.step("fan.c.more").status == "SUCCESS"
    assert "fan.b.more" not in fan.branches["fan.b"].steps
    assert "fan.b.fail" in fan.branches["fan.b"].steps
    assert "after" not in run_log.steps


def test_a_run_whose_many_branches_failed_names_a_few_and_counts_the_rest(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    def broken(position: int) -> None:
        raise ValueError(f"branch {position} broke")

    branches = {
        f"b{i}": Pipeline(steps=[PythonTask(name="work", function=functools.partial(broken, i))])
        for i in range(12)
    }
    with pytest.raises(ExecutionFailedError) as caught:
        run(Pipeline(steps=[Parallel(name="fan", branches=branches)]))
    failed = sorted(name for name, _ in caught.value.failures)
    assert failed == sorted(f"fan.b{i}.work" for i in range(12))
    message = str(caught.value)
    named = [name for name in failed if f"{name}: ValueError: branch" in message]
    assert len(named) == ExecutionFailedError.NAMED
    assert f"and {12 - ExecutionFailedError.NAMED} more steps" in message
    assert message.endswith(f"Run log: {caught.value.run_log_path}")
    fan = stored_run_log().steps["fan"]
    assert fan.message == f"branches failed: {', '.join(f'b{i}' for i in range(10))} and 2 more"
    assert all(branch.status == "FAIL" for branch in fan.branches.values())


def test_nested_three_levels_deep_all_recorded(run: Run) -> None:
    def leaf() -> str:
        return "deep"

    level3 = Pipeline(steps=[task("leaf", leaf, ["found"])])
    level2 = Pipeline(steps=[Parallel(name="l3", branches={"z1": level3, "z2": level3})])
    level1 = Pipeline(steps=[Parallel(name="l2", branches={"y1": level2, "y2": level2})])
    root = Pipeline(steps=[Parallel(name="l1", branches={"x1": level1, "x2": level1})])
    run_log = run(root)
    assert run_log.status == "SUCCESS"
    leaves = [s.internal_name for s in run_log.walk() if s.name == "leaf"]
    assert sorted(leaves) == sorted(
        f"l1.{x}.l2.{y}.l3.{z}.leaf"
        for x in ("x1", "x2")
        for y in ("y1", "y2")
        for z in ("z1", "z2")
    )
    for name in leaves:
        assert run_log.step(name).status == "SUCCESS"
    middle = run_log.step("l1.x2.l2.y1.l3")
    assert middle.status == "SUCCESS"
    assert middle.branches["l1.x2.l2.y1.l3.z2"].status == "SUCCESS"
    assert run_log.parameters["found"].value == "deep"


def test_a_failure_deep_inside_fails_every_level(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    def broken() -> None:
        raise RuntimeError("deep failure")

    inner = Pipeline(steps=[task("leaf", broken)])
    middle = Pipeline(steps=[Parallel(name="inner", branches={"y": inner})])
    root = Pipeline(steps=[Parallel(name="outer", branches={"x": middle})])
    with pytest.raises(
        ExecutionFailedError, match=r"outer\.x\.inner\.y\.leaf: RuntimeError: deep failure"
    ):
        run(root)
    run_log = stored_run_log()
    assert run_log.step("outer").status == "FAIL"
    assert run_log.step("outer.x.inner").status == "FAIL"
    assert run_log.step("outer").branches["outer.x"].status == "FAIL"


def test_on_failure_inside_a_branch_recovers_the_branch(run: Run) -> None:
    def broken() -> None:
        raise ValueError("no")

    branch = Pipeline(
        steps=[
            PythonTask(name="work", function=broken, on_failure=Pipeline(steps=[Stub(name="fix")])),
            Stub(name="skipped"),
        ]
    )
    run_log = run(
        Pipeline(steps=[Parallel(name="fan", branches={"a": branch}), Stub(name="after")])
    )
    assert run_log.status == "SUCCESS"
    steps = run_log.steps["fan"].branches["fan.a"].steps
    assert list(steps) == ["fan.a.work", "fan.a.fix", "fan.a.success"]
    assert steps["fan.a.work"].status == "FAIL"
    assert run_log.steps["after"].status == "SUCCESS"


def test_a_branch_that_is_only_a_fail_step_fails_the_parallel_step(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    branches = {
        "good": Pipeline(steps=[Success()]),
        "bad": Pipeline(steps=[Fail()]),
    }
    with pytest.raises(ExecutionFailedError):
        run(Pipeline(steps=[Parallel(name="fan", branches=branches), Stub(name="after")]))
    run_log = stored_run_log()
    fan = run_log.steps["fan"]
    assert fan.status == "FAIL"
    assert fan.branches["fan.good"].status == "SUCCESS"
    assert fan.branches["fan.bad"].status == "FAIL"
    assert list(fan.branches["fan.bad"].steps) == ["fan.bad.fail"]
    assert "after" not in run_log.steps


def test_on_failure_of_a_parallel_step_runs(run: Run) -> None:
    def broken() -> None:
        raise ValueError("no")

    handler = Pipeline(steps=[Stub(name="handle")])
    fan = Parallel(
        name="fan", branches={"a": Pipeline(steps=[task("work", broken)])}, on_failure=handler
    )
    run_log = run(Pipeline(steps=[fan, Stub(name="skipped")]))
    assert run_log.status == "SUCCESS"
    assert run_log.steps["fan"].status == "FAIL"
    assert run_log.steps["handle"].status == "SUCCESS"
    assert "skipped" not in run_log.steps


def test_a_parallel_step_followed_by_a_step_in_a_branch(run: Run) -> None:
    def first() -> int:
        return 2

    def second(n: int) -> int:
        return n * 3

    branch = Pipeline(steps=[task("first", first, ["n"]), task("second", second, ["n"])])
    run_log = run(Pipeline(steps=[Parallel(name="fan", branches={"only": branch})]))
    assert run_log.parameters["n"].value == 6
    assert list(run_log.steps["fan"].branches["fan.only"].steps) == [
        "fan.only.first",
        "fan.only.second",
        "fan.only.success",
    ]


def test_a_failing_parallel_step_takes_its_on_failure_pipeline(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise ValueError("branch broke")

    def recover() -> str:
        return "recovered"

    branches = {
        "bad": Pipeline(steps=[task("work", broken)]),
        "good": Pipeline(steps=[Stub(name="work")]),
    }
    recovery = Pipeline(steps=[task("recover", recover, ["how"])])
    run_log = run(
        Pipeline(
            steps=[
                Parallel(name="fan", branches=branches, on_failure=recovery),
                Stub(name="never"),
            ]
        )
    )
    assert run_log.status == "SUCCESS"
    assert list(run_log.steps) == ["fan", "recover", "success"]
    assert run_log.steps["fan"].status == "FAIL"
    assert run_log.steps["fan"].branches["fan.good"].status == "SUCCESS"
    assert run_log.parameters["how"].value == "recovered"
    assert "  handled fan.bad.work: ValueError: branch broke" in capsys.readouterr().out


def test_on_failure_pipelines_with_parallels_inside_nested_branches(run: Run) -> None:
    def broken() -> None:
        raise ValueError("deep failure")

    def one() -> int:
        return 1

    def add(v: int) -> int:
        return v + 1

    recovery = Pipeline(
        steps=[
            Parallel(
                name="rp",
                branches={
                    "x": Pipeline(steps=[task("r", one, ["v"])]),
                    "y": Pipeline(steps=[Stub(name="s")]),
                },
            ),
            task("after_rec", add, ["v"]),
        ]
    )
    failing = Pipeline(
        steps=[PythonTask(name="b", function=broken, on_failure=recovery), Stub(name="never")]
    )
    deep = Pipeline(
        steps=[
            Parallel(
                name="l1",
                branches={
                    "a": Pipeline(
                        steps=[
                            Parallel(
                                name="l2",
                                branches={
                                    "c": failing,
                                    "d": Pipeline(steps=[Success(name="ok")]),
                                },
                            )
                        ]
                    )
                },
            )
        ]
    )
    run_log = run(
        Pipeline(steps=[Parallel(name="top", branches={"m": deep}), task("final", add, ["v"])])
    )

    assert run_log.status == "SUCCESS"
    assert run_log.parameters["v"].value == 3  # 1 from r, +1 after_rec, +1 final
    assert run_log.step("top.m.l1.a.l2.c.b").status == "FAIL"
    assert "top.m.l1.a.l2.c.never" not in [s.internal_name for s in run_log.walk()]
    for path in ("top.m.l1.a.l2.c.rp.x.r", "top.m.l1.a.l2.c.after_rec", "top.m.l1.a.l2.d.ok"):
        assert run_log.step(path).status == "SUCCESS"
