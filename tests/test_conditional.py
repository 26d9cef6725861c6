"""Conditional steps on the `local` executor: only the matching branch runs, its values
merge back, a value that matches no branch or a missing parameter fails the step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    Conditional,
    ExecutionFailedError,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    Stub,
)

Run = Callable[..., Any]


def task(name: str, function: Callable[..., Any], returns: list[Any] | None = None) -> PythonTask:
    return PythonTask(name=name, function=function, returns=returns or [])


def toss_pipeline(
    value: Any, ran: Path, on_failure: Pipeline | None = None
) -> tuple[Pipeline, dict[str, Any]]:
    """``toss`` returns ``value`` and ``keep=5``; branches heads, tails, 1 and True each
    write a file named after themselves; heads also changes ``keep`` and sets ``side``."""

    def toss() -> tuple[Any, int]:
        return value, 5

    def branch(key: str, returns: list[str]) -> Pipeline:
        def mark(keep: int) -> tuple[str, int]:
            (ran / key).write_text(str(keep), encoding="utf-8")
            return key.upper(), keep + 1

        def mark_only(keep: int) -> None:
            (ran / key).write_text(str(keep), encoding="utf-8")

        function = mark if returns else mark_only
        return Pipeline(steps=[task("mark", function, returns)])

    seen: dict[str, Any] = {}

    def report(keep: int, side: str = "none") -> None:
        seen.update(keep=keep, side=side)

    pipeline = Pipeline(
        steps=[
            task("toss", toss, ["choice", "keep"]),
            Conditional(
                name="cond",
                parameter="choice",
                branches={
                    "heads": branch("heads", ["side", "keep"]),
                    "tails": branch("tails", []),
                    "1": branch("1", []),
                    "True": branch("True", []),
                },
                on_failure=on_failure,
            ),
            task("report", report),
        ]
    )
    return pipeline, seen


@pytest.fixture
def ran(workdir: Path) -> Path:
    folder = workdir / "ran"
    folder.mkdir()
    return folder


def test_only_the_matching_branch_runs_and_its_values_merge_back(run: Run, ran: Path) -> None:
    pipeline, seen = toss_pipeline("heads", ran)
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert [p.name for p in ran.iterdir()] == ["heads"]
    cond = run_log.steps["cond"]
    assert (cond.status, cond.step_type, cond.attempts) == ("SUCCESS", "conditional", [])
    assert list(cond.branches) == ["cond.heads"]
    assert list(cond.branches["cond.heads"].steps) == ["cond.heads.mark", "cond.heads.success"]
    assert run_log.step("cond.heads.mark").attempts[0].input_parameters["keep"].value == 5
    assert seen == {"keep": 6, "side": "HEADS"}
    assert run_log.parameters["keep"].value == 6
    assert run_log.parameters["side"].value == "HEADS"
    assert list(run_log.steps) == ["toss", "cond", "report", "success"]


def test_a_branch_that_returns_nothing_leaves_the_parameters(run: Run, ran: Path) -> None:
    pipeline, seen = toss_pipeline("tails", ran)
    run_log = run(pipeline)
    assert [p.name for p in ran.iterdir()] == ["tails"]
    assert list(run_log.steps["cond"].branches) == ["cond.tails"]
    assert seen == {"keep": 5, "side": "none"}


@pytest.mark.parametrize(("value", "key"), [(1, "1"), (True, "True")])
def test_the_branch_key_is_the_values_text(run: Run, ran: Path, value: Any, key: str) -> None:
    run_log = run(toss_pipeline(value, ran)[0])
    assert [p.name for p in ran.iterdir()] == [key]
    assert list(run_log.steps["cond"].branches) == [f"cond.{key}"]
    assert run_log.step(f"cond.{key}.mark").status == "SUCCESS"


def test_a_value_that_matches_no_branch_fails_listing_the_keys(
    run: Run, ran: Path, stored_run_log: Callable[..., Any]
) -> None:
    with pytest.raises(ExecutionFailedError) as info:
        run(toss_pipeline("edge", ran)[0])
    assert list(ran.iterdir()) == []
    run_log = stored_run_log()
    cond = run_log.steps["cond"]
    assert cond.status == "FAIL"
    assert "'edge'" in cond.message
    for key in ("'heads'", "'tails'", "'1'", "'True'"):
        assert key in cond.message
    assert cond.branches == {}
    assert "report" not in run_log.steps
    assert run_log.status == "FAIL"
    assert "cond" in str(info.value)


def test_a_missing_parameter_fails_naming_it(
    run: Run, ran: Path, stored_run_log: Callable[..., Any]
) -> None:
    def mark() -> None:
        (ran / "a").write_text("ran", encoding="utf-8")

    pipeline = Pipeline(
        steps=[
            Conditional(
                name="cond",
                parameter="flavour",
                branches={"a": Pipeline(steps=[task("mark", mark)])},
            )
        ]
    )
    with pytest.raises(ExecutionFailedError):
        run(pipeline)
    cond = stored_run_log().steps["cond"]
    assert cond.status == "FAIL"
    assert "'flavour'" in cond.message
    assert "not set" in cond.message
    assert list(ran.iterdir()) == []


def test_a_failing_branch_fails_the_conditional_and_nothing_merges(
    run: Run, stored_run_log: Callable[..., Any]
) -> None:
    def pick() -> str:
        return "a"

    def broken() -> int:
        raise RuntimeError("branch a breaks")

    pipeline = Pipeline(
        steps=[
            task("pick", pick, ["choice"]),
            Conditional(
                name="cond",
                parameter="choice",
                branches={"a": Pipeline(steps=[Stub(name="first"), task("broken", broken, ["x"])])},
            ),
        ]
    )
    with pytest.raises(ExecutionFailedError):
        run(pipeline)
    run_log = stored_run_log()
    assert run_log.steps["cond"].status == "FAIL"
    assert run_log.steps["cond"].branches["cond.a"].status == "FAIL"
    assert "branch a breaks" in run_log.step("cond.a.broken").message
    assert "x" not in run_log.parameters


def test_a_failing_conditional_goes_to_its_on_failure_pipeline(run: Run, ran: Path) -> None:
    def recover() -> str:
        return "recovered"

    on_failure = Pipeline(steps=[task("recover", recover, ["state"])])
    run_log = run(toss_pipeline("edge", ran, on_failure=on_failure)[0])
    assert run_log.status == "SUCCESS"
    assert run_log.steps["cond"].status == "FAIL"
    assert run_log.steps["recover"].status == "SUCCESS"
    assert "report" not in run_log.steps
    assert run_log.parameters["state"].value == "recovered"


BRANCH = Pipeline(steps=[Stub(name="s")])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"parameter": "my choice"}, "'my choice' is not a parameter name"),
        ({"branches": {}}, "branches is empty"),
        ({"branches": {"a.b": BRANCH}}, "branch name 'a.b' contains '.'"),
        ({"branches": {"a": Stub(name="s")}}, "branch 'a' is a Stub, expected a Pipeline"),
        ({"parameter": None}, "field 'parameter' is required"),
    ],
)
def test_bad_conditional_fields_are_refused_when_built(
    kwargs: dict[str, Any], expected: str
) -> None:
    fields: dict[str, Any] = {"name": "cond", "parameter": "choice", "branches": {"a": BRANCH}}
    fields.update(kwargs)
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises(PipelineDefinitionError) as info:
        Conditional(**fields)
    assert "Conditional 'cond'" in str(info.value)
    assert expected in str(info.value)
