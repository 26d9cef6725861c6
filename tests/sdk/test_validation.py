"""Bad pipelines are refused when they are built, with a message that says what to fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runnable_dask import (
    Fail,
    NotebookTask,
    Parallel,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    ShellTask,
    Stub,
    Success,
    pickled,
)


def noop() -> None:
    return None


def branch() -> Pipeline:
    return Pipeline(steps=[Stub(name="work")])


BAD_DEFINITIONS: list[tuple[str, Callable[[], Any], str]] = [
    (
        "a step named like a terminal node",
        lambda: Pipeline(steps=[Stub(name="success"), Stub(name="after")]),
        r"Stub 'success': the name 'success' is reserved for the pipeline's end node",
    ),
    (
        "duplicate step names",
        lambda: Pipeline(steps=[Stub(name="same"), Stub(name="same")]),
        r"Stub 'same': the name 'same' is used twice",
    ),
    (
        "duplicate name across an on_failure pipeline",
        lambda: Pipeline(
            steps=[
                PythonTask(
                    name="train",
                    function=noop,
                    on_failure=Pipeline(steps=[Stub(name="report")]),
                ),
                Stub(name="report"),
            ]
        ),
        r"'report' is used twice in one pipeline \(with its on_failure pipelines\)",
    ),
    (
        "'.' in a step name",
        lambda: Stub(name="load.data"),
        r"step name 'load\.data' contains '\.'.*rename it, e\.g\. 'load_data'",
    ),
    (
        "'%' in a step name",
        lambda: PythonTask(name="50%", function=noop),
        r"step name '50%' contains '%'",
    ),
    (
        "'.' in a branch name",
        lambda: Parallel(name="fan", branches={"a.b": branch()}),
        r"branch name 'a\.b' contains '\.'",
    ),
    (
        "'%' in a branch name",
        lambda: Parallel(name="fan", branches={"a%": branch()}),
        r"branch name 'a%' contains '%'",
    ),
    (
        "empty step name",
        lambda: Stub(name=""),
        r"step name must not be empty",
    ),
    (
        "empty branches",
        lambda: Parallel(name="fan", branches={}),
        r"Parallel 'fan': branches: branches is empty",
    ),
    (
        "a branch that is not a Pipeline",
        lambda: Parallel(name="fan", branches={"a": Stub(name="work")}),
        r"branch 'a' is a Stub, expected a Pipeline",
    ),
    (
        "both terminate flags",
        lambda: Stub(name="end", terminate_with_success=True, terminate_with_failure=True),
        r"Stub 'end': terminate_with_success and terminate_with_failure are both set",
    ),
    (
        "terminate_with_success before the end",
        lambda: Pipeline(steps=[Stub(name="early", terminate_with_success=True), Stub(name="x")]),
        r"Stub 'early' has terminate_with_success=True but is not the last step",
    ),
    (
        "terminate_with_failure before the end",
        lambda: Pipeline(steps=[Stub(name="early", terminate_with_failure=True), Stub(name="x")]),
        r"Stub 'early' has terminate_with_failure=True but is not the last step",
    ),
    (
        "Success before the end",
        lambda: Pipeline(steps=[Success(), Stub(name="x")]),
        r"Success 'success' is not the last step",
    ),
    (
        "Fail before the end",
        lambda: Pipeline(steps=[Stub(name="x"), Fail(name="stop"), Stub(name="y")]),
        r"Fail 'stop' is not the last step",
    ),
    (
        "a function that is not callable",
        lambda: PythonTask(name="train", function=noop()),
        r"PythonTask 'train': function: function must be callable, got None",
    ),
    (
        "pickled() return on a ShellTask",
        lambda: ShellTask(name="sh", command="echo hi", returns=[pickled("model")]),
        r"ShellTask 'sh': returns: returns \['model'\] are pickled\(\)",
    ),
    (
        "unknown field with did-you-mean",
        lambda: PythonTask(name="train", function=noop, retuns=["x"]),
        r"PythonTask 'train': unknown field 'retuns'; did you mean 'returns'\?",
    ),
    (
        "unknown field on a Pipeline",
        lambda: Pipeline(step=[Stub(name="x")]),
        r"Pipeline: unknown field 'step'; did you mean 'steps'\?",
    ),
    (
        "empty steps",
        lambda: Pipeline(steps=[]),
        r"steps is empty; a pipeline needs at least one step",
    ),
    (
        "a non-step in steps",
        lambda: Pipeline(steps=[Stub(name="x"), "y"]),
        r"steps\[1\] is a str \('y'\), expected a PythonTask",
    ),
    (
        "on_failure that is not a Pipeline",
        lambda: Stub(name="x", on_failure="handler"),
        r"on_failure must be a Pipeline, got str",
    ),
    (
        "a return name that is not an identifier",
        lambda: PythonTask(name="train", function=noop, returns=["my-model"]),
        r"return name 'my-model' is not a valid identifier",
    ),
    (
        "the same return twice",
        lambda: PythonTask(name="train", function=noop, returns=["x", "x"]),
        r"returns names \['x'\] more than once",
    ),
    (
        "an empty shell command",
        lambda: ShellTask(name="sh", command="  "),
        r"command is empty",
    ),
    (
        "a notebook that is not .ipynb",
        lambda: NotebookTask(name="nb", notebook="analysis.py"),
        r"notebook 'analysis\.py' is not a \.ipynb file",
    ),
    (
        "a missing required field",
        lambda: ShellTask(name="sh"),
        r"ShellTask 'sh': field 'command' is required",
    ),
    (
        "runnable's per-step executor overrides, which nothing here would apply",
        lambda: PythonTask(name="train", function=noop, overrides={"argo": "gpu"}),
        r"PythonTask 'train': overrides: overrides \{'argo': 'gpu'\} would select a "
        r"per-step variant .* Remove overrides; .* resources=\{'GPU': 1\}, timeout=",
    ),
    (
        "a timeout given as a flag, which pydantic would read as one second",
        lambda: ShellTask(name="sh", command="make", timeout=True),
        r"ShellTask 'sh': timeout: True is a flag, not a number; give one, e.g. timeout=600",
    ),
    (
        "retries given as a flag",
        lambda: PythonTask(name="train", function=noop, retries=True),
        r"PythonTask 'train': retries: True is a flag, not a number; give one, e.g. retries=3",
    ),
    (
        "a timeout that never comes, which would still run the step in a child process",
        lambda: PythonTask(name="train", function=noop, timeout=float("inf")),
        r"PythonTask 'train': timeout: Input should be a finite number \(got inf\)",
    ),
]


@pytest.mark.parametrize(
    ("build", "message"),
    [pytest.param(build, message, id=case) for case, build, message in BAD_DEFINITIONS],
)
def test_bad_definition_is_refused_with_a_message(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        build()


def test_every_problem_in_one_pipeline_is_reported_at_once() -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(
            steps=[
                Stub(name="early", terminate_with_success=True),
                Fail(name="stop"),
                Stub(name="dup"),
                Stub(name="dup"),
            ]
        )
    problems = caught.value.problems
    assert len(problems) == 3
    assert "Stub 'early' has terminate_with_success=True" in problems[0]
    assert "Fail 'stop' is not the last step" in problems[1]
    assert "the name 'dup' is used twice" in problems[2]
    message = str(caught.value)
    assert all(problem in message for problem in problems)


def test_every_problem_in_one_step_is_reported_at_once() -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        PythonTask(name="bad.name", function=42, retuns=["x"])
    problems = caught.value.problems
    assert len(problems) == 3
    joined = "\n".join(problems)
    assert "contains '.'" in joined
    assert "function must be callable" in joined
    assert "unknown field 'retuns'" in joined


def test_every_bad_branch_is_reported_at_once() -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        Parallel(name="fan", branches={"a.1": branch(), "b": "not a pipeline"})
    message = str(caught.value)
    assert "branch name 'a.1' contains '.'" in message
    assert "branch 'b' is a str, expected a Pipeline" in message


def test_definition_error_is_a_value_error_for_callers_that_catch_those() -> None:
    with pytest.raises(ValueError, match="is used twice"):
        Pipeline(steps=[Stub(name="x"), Stub(name="x")])


def test_stub_accepts_extra_keywords() -> None:
    stub = Stub(name="draft", function=noop, returns=["x"], anything={"goes": 1})
    assert stub.name == "draft"
    pipeline = Pipeline(steps=[stub])
    assert pipeline.steps == [stub]


def test_bare_return_names_mean_json() -> None:
    task = PythonTask(name="train", function=noop, returns=["x", pickled("model")])
    assert [(r.name, r.kind) for r in task.returns] == [("x", "json"), ("model", "object")]


def test_same_step_names_in_different_branches_are_allowed() -> None:
    fan = Parallel(name="fan", branches={"a": branch(), "b": branch()})
    pipeline = Pipeline(steps=[Stub(name="work"), fan])
    assert [s.name for s in pipeline.steps] == ["work", "fan"]


def test_terminating_step_at_the_end_is_allowed() -> None:
    pipeline = Pipeline(steps=[Stub(name="a"), Stub(name="b", terminate_with_failure=True)])
    assert pipeline.steps[-1].terminate_with_failure
