"""Loop steps on the `local` executor: iterations ``loop.0``, ``loop.1``, ...; the index as a
parameter and an environment variable; values carried on and back; how a loop stops."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from runnable_dask import (
    ExecutionFailedError,
    Loop,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    ShellTask,
    Stub,
)

Run = Callable[..., Any]


def task(name: str, function: Callable[..., Any], returns: list[Any] | None = None) -> PythonTask:
    return PythonTask(name=name, function=function, returns=returns or [])


def start() -> int:
    return 100


def counting_loop(
    stop_at: int, max_iterations: int, fail_at: int = -1, **kwargs: Any
) -> tuple[Pipeline, list[dict[str, Any]]]:
    """``body`` adds one to ``counter``, sets ``done`` once it reaches ``stop_at`` and
    records what it saw; ``sh`` echoes the index through the shell."""
    calls: list[dict[str, Any]] = []

    def body(other: int, idx: int, counter: int = 0) -> tuple[int, bool, int]:
        calls.append({"idx": idx, "env": os.environ.get("idx"), "counter": counter})  # noqa: SIM112
        if idx == fail_at:
            raise RuntimeError(f"iteration {idx} breaks")
        return counter + 1, counter + 1 >= stop_at, other + idx

    loop = Loop(
        name="loop",
        branch=Pipeline(
            steps=[
                task("body", body, ["counter", "done", "seen"]),
                ShellTask(name="sh", command='export shell_idx="at-$idx"', returns=["shell_idx"]),
            ]
        ),
        max_iterations=max_iterations,
        break_on="done",
        index_as="idx",
        **kwargs,
    )
    pipeline = Pipeline(steps=[task("start", start, ["other"]), loop, Stub(name="after")])
    return pipeline, calls


def test_the_loop_stops_when_break_on_is_true(run: Run) -> None:
    pipeline, calls = counting_loop(stop_at=2, max_iterations=5)
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    loop = run_log.steps["loop"]
    assert (loop.status, loop.step_type, loop.attempts) == ("SUCCESS", "loop", [])
    assert list(loop.branches) == ["loop.0", "loop.1"]
    assert list(loop.branches["loop.1"].steps) == ["loop.1.body", "loop.1.sh", "loop.1.success"]
    assert [c["idx"] for c in calls] == [0, 1]
    assert run_log.parameters["counter"].value == 2
    assert run_log.parameters["done"].value is True
    assert list(run_log.steps) == ["start", "loop", "after", "success"]


def test_max_iterations_ends_the_loop_with_success(run: Run) -> None:
    pipeline, calls = counting_loop(stop_at=99, max_iterations=3)
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert run_log.steps["loop"].status == "SUCCESS"
    assert list(run_log.steps["loop"].branches) == ["loop.0", "loop.1", "loop.2"]
    assert len(calls) == 3
    assert run_log.parameters["counter"].value == 3
    assert run_log.parameters["done"].value is False
    assert run_log.steps["after"].status == "SUCCESS"


def test_values_carry_from_one_iteration_to_the_next_and_back(run: Run) -> None:
    pipeline, calls = counting_loop(stop_at=99, max_iterations=3)
    run_log = run(pipeline)
    assert [c["counter"] for c in calls] == [0, 1, 2]
    inputs = run_log.step("loop.1.body").attempts[0].input_parameters
    assert inputs["counter"].value == 1  # returned by loop.0
    assert inputs["other"].value == 100  # the parent's value
    assert run_log.steps["loop"].branches["loop.2"].parameters["seen"].value == 102
    assert run_log.parameters["seen"].value == 102  # the last iteration's value
    assert run_log.parameters["other"].value == 100


def test_the_index_is_a_parameter_and_an_environment_variable(run: Run) -> None:
    pipeline, calls = counting_loop(stop_at=99, max_iterations=3)
    run_log = run(pipeline)
    assert [(c["idx"], c["env"]) for c in calls] == [(0, "0"), (1, "1"), (2, "2")]
    for index in range(3):
        body = run_log.step(f"loop.{index}.body").attempts[0]
        assert body.input_parameters["idx"].value == index
        sh = run_log.step(f"loop.{index}.sh").attempts[0]
        assert sh.output_parameters["shell_idx"].value == f"at-{index}"
    assert "idx" not in os.environ  # set only while the task ran


def test_a_failing_iteration_fails_the_loop(run: Run, stored_run_log: Callable[..., Any]) -> None:
    pipeline, calls = counting_loop(stop_at=99, max_iterations=5, fail_at=1)
    with pytest.raises(ExecutionFailedError):
        run(pipeline)
    run_log = stored_run_log()
    loop = run_log.steps["loop"]
    assert loop.status == "FAIL"
    assert "iteration 1" in loop.message
    assert list(loop.branches) == ["loop.0", "loop.1"]  # no iteration after the failure
    assert loop.branches["loop.0"].status == "SUCCESS"
    assert loop.branches["loop.1"].status == "FAIL"
    assert list(loop.branches["loop.1"].steps) == ["loop.1.body", "loop.1.fail"]
    assert "iteration 1 breaks" in run_log.step("loop.1.body").message
    assert [c["idx"] for c in calls] == [0, 1]
    assert "after" not in run_log.steps
    assert run_log.status == "FAIL"


def test_a_failing_loop_goes_to_its_on_failure_pipeline(run: Run) -> None:
    def recover() -> str:
        return "recovered"

    pipeline, _ = counting_loop(
        stop_at=99,
        max_iterations=5,
        fail_at=0,
        on_failure=Pipeline(steps=[task("recover", recover, ["state"])]),
    )
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert run_log.steps["loop"].status == "FAIL"
    assert run_log.steps["recover"].status == "SUCCESS"
    assert "after" not in run_log.steps
    assert run_log.parameters["state"].value == "recovered"


BRANCH = Pipeline(steps=[Stub(name="s")])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_iterations": 0}, "max_iterations"),
        ({"max_iterations": "many"}, "max_iterations"),
        ({"break_on": "is done"}, "'is done' is not a parameter name"),
        ({"index_as": "2i"}, "'2i' is not a parameter name"),
        ({"branch": Stub(name="s")}, "expected a Pipeline"),
        ({"index_as": None}, "field 'index_as' is required"),
        ({"max_iterations": None}, "field 'max_iterations' is required"),
    ],
)
def test_bad_loop_fields_are_refused_when_built(kwargs: dict[str, Any], expected: str) -> None:
    fields: dict[str, Any] = {
        "name": "loop",
        "branch": BRANCH,
        "max_iterations": 3,
        "break_on": "done",
        "index_as": "idx",
    }
    fields.update(kwargs)
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises(PipelineDefinitionError) as info:
        Loop(**fields)
    assert "Loop 'loop'" in str(info.value)
    assert expected in str(info.value)
