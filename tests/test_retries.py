"""Retries of a task within a run (`retries=N`, `retry_delay=s`) on the `local` executor:
each attempt is recorded with its own number, times and message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    ExecutionFailedError,
    Map,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    ShellTask,
    Stub,
)

Run = Callable[..., Any]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def flaky(failures: int) -> tuple[Callable[[], int], list[int]]:
    """A function that fails its first ``failures`` calls, each with its own message."""
    calls: list[int] = []

    def work() -> int:
        calls.append(len(calls) + 1)
        if len(calls) <= failures:
            raise ConnectionError(f"call {len(calls)} lost the connection")
        return len(calls)

    return work, calls


def test_attempts_are_numbered_with_their_own_messages_and_times(run: Run) -> None:
    work, calls = flaky(failures=2)
    pipeline = Pipeline(
        steps=[PythonTask(name="fetch", function=work, returns=["n"], retries=3), Stub(name="b")]
    )
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert calls == [1, 2, 3]  # stops at the first success, before the retries run out
    step = run_log.steps["fetch"]
    assert step.status == "SUCCESS"
    attempts = step.attempts
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert [a.status for a in attempts] == ["FAIL", "FAIL", "SUCCESS"]
    assert "ConnectionError: call 1 lost the connection" in attempts[0].message
    assert "ConnectionError: call 2 lost the connection" in attempts[1].message
    assert attempts[2].message == ""
    assert attempts[2].output_parameters["n"].value == 3
    assert attempts[0].output_parameters == {}
    for attempt in attempts:
        assert at(attempt.start_time) <= at(attempt.end_time)
    for earlier, later in pairwise(attempts):
        assert at(earlier.end_time) <= at(later.start_time)
    assert run_log.parameters["n"].value == 3


def test_retry_delay_separates_the_attempts(run: Run) -> None:
    delay = 0.3
    work, _ = flaky(failures=2)
    pipeline = Pipeline(
        steps=[PythonTask(name="fetch", function=work, retries=2, retry_delay=delay)]
    )
    run_log = run(pipeline)
    attempts = run_log.steps["fetch"].attempts
    assert [a.status for a in attempts] == ["FAIL", "FAIL", "SUCCESS"]
    for earlier, later in pairwise(attempts):
        gap = (at(later.start_time) - at(earlier.end_time)).total_seconds()
        assert gap >= delay


def test_retries_exhausted_fail_the_step(run: Run, stored_run_log: Callable[..., Any]) -> None:
    work, calls = flaky(failures=10)

    def after() -> None:
        raise AssertionError("must not run")

    pipeline = Pipeline(
        steps=[
            PythonTask(name="fetch", function=work, retries=2),
            PythonTask(name="after", function=after),
        ]
    )
    with pytest.raises(ExecutionFailedError) as info:
        run(pipeline)
    assert calls == [1, 2, 3]  # the first attempt and two retries
    run_log = stored_run_log()
    step = run_log.steps["fetch"]
    assert step.status == "FAIL"
    assert [(a.attempt_number, a.status) for a in step.attempts] == [
        (1, "FAIL"),
        (2, "FAIL"),
        (3, "FAIL"),
    ]
    assert "call 3 lost the connection" in step.message  # the last attempt's message
    assert "call 3 lost the connection" in str(info.value)
    assert "after" not in run_log.steps
    assert run_log.status == "FAIL"


def test_no_retries_means_one_attempt(run: Run) -> None:
    work, calls = flaky(failures=1)
    with pytest.raises(ExecutionFailedError):
        run(Pipeline(steps=[PythonTask(name="fetch", function=work)]))
    assert calls == [1]


def test_a_shell_task_retries(run: Run, workdir: Path) -> None:
    command = (
        "echo x >> tries.txt; "
        'if [ "$(wc -l < tries.txt)" -lt 2 ]; then echo not yet >&2; exit 3; fi; '
        'export tries="$(wc -l < tries.txt | tr -d " ")"'
    )
    pipeline = Pipeline(steps=[ShellTask(name="sh", command=command, returns=["tries"], retries=2)])
    run_log = run(pipeline)
    attempts = run_log.steps["sh"].attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert attempts[0].message
    assert (workdir / "tries.txt").read_text().count("x") == 2
    assert run_log.parameters["tries"].value == 2


def test_retries_inside_a_map_iteration(run: Run, workdir: Path) -> None:
    seen: dict[int, int] = {}

    def work(item: int) -> None:
        seen[item] = seen.get(item, 0) + 1
        if item == 2 and seen[item] == 1:
            raise RuntimeError("first try of item 2")

    params = workdir / "params.yaml"
    params.write_text("items: [1, 2]\n", encoding="utf-8")
    branch = Pipeline(steps=[PythonTask(name="work", function=work, retries=1)])
    pipeline = Pipeline(steps=[Map(name="m", branch=branch, iterate_on="items", iterate_as="item")])
    run_log = run(pipeline, parameters_file=str(params))
    assert run_log.status == "SUCCESS"
    assert seen == {1: 1, 2: 2}
    assert [a.status for a in run_log.step("m.2.work").attempts] == ["FAIL", "SUCCESS"]
    assert [a.attempt_number for a in run_log.step("m.2.work").attempts] == [1, 2]
    assert len(run_log.step("m.1.work").attempts) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"retries": -1}, "retries"), ({"retry_delay": -0.5}, "retry_delay")],
)
def test_negative_retries_or_delays_are_refused_when_built(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        PythonTask(name="fetch", function=print, **kwargs)
    assert "PythonTask 'fetch'" in str(info.value)
    assert field in str(info.value)
