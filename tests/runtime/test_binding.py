"""Binding parameters to a function's arguments, and its result to the task's returns."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from pydantic import BaseModel

from runnable_dask import json, metric, pickled
from runnable_dask.runtime.binding import BindingError, ReturnError, bind, collect_returns
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import PythonTask, TaskReturn


class Config(BaseModel):
    x: int
    name: str = "default"


def params(**values: Any) -> dict[str, Param]:
    return {name: Param(kind="json", value=value) for name, value in values.items()}


def test_arguments_are_bound_by_name() -> None:
    def function(b: Any, a: Any) -> None:
        return None

    assert bind(function, params(a=1, b=2, c=3)) == {"a": 1, "b": 2}


def test_partials_of_one_function_each_bind_what_they_leave_open() -> None:
    def fit(model: str, fold: int, alpha: float) -> None:
        return None

    values = params(model="m", fold=2, alpha=0.5)
    assert bind(functools.partial(fit, "svm", 1), values) == {"alpha": 0.5}
    assert bind(functools.partial(fit, "tree"), values) == {"fold": 2, "alpha": 0.5}
    assert bind(functools.partial(fit, alpha=0.1), params(model="m", fold=2)) == {
        "model": "m",
        "fold": 2,
    }
    with pytest.raises(BindingError, match="'alpha'"):
        bind(functools.partial(fit, fold=3), params(model="m"))


@pytest.mark.parametrize(
    ("annotation", "raw", "expected"),
    [
        (int, "3", 3),
        (float, 1, 1.0),
        (str, 5, "5"),
        (list, (1, 2), [1, 2]),
        (dict, [["a", 1]], {"a": 1}),
        (list[int], ["1", "2"], [1, 2]),
    ],
)
def test_annotations_cast(annotation: Any, raw: Any, expected: Any) -> None:
    def function(value):  # type: ignore[no-untyped-def]
        return value

    function.__annotations__ = {"value": annotation}
    bound = bind(function, params(value=raw))["value"]
    assert bound == expected
    assert type(bound) is type(expected)


def test_a_pydantic_model_is_built_from_its_dict() -> None:
    def function(config: Config) -> None:
        return None

    bound = bind(function, params(config={"x": 10}))["config"]
    assert bound == Config(x=10, name="default")


def test_string_annotations_from_future_import_are_resolved() -> None:
    # This module uses `from __future__ import annotations`: hints are strings here.
    def function(count: int, config: Config) -> None:
        return None

    bound = bind(function, params(count="7", config={"x": 1}))
    assert bound == {"count": 7, "config": Config(x=1)}


def test_a_value_that_cannot_be_cast_names_the_argument() -> None:
    def function(count: int) -> None:
        return None

    with pytest.raises(BindingError, match=r"argument 'count' = 'many' cannot be read as int"):
        bind(function, params(count="many"))


def test_a_bad_dict_for_a_model_names_the_argument() -> None:
    def function(config: Config) -> None:
        return None

    with pytest.raises(
        BindingError, match=r"argument 'config' = \{'y': 1\} cannot be read as Config"
    ):
        bind(function, params(config={"y": 1}))


def test_a_missing_parameter_with_a_default_takes_the_default() -> None:
    def function(a: int, b: int = 5) -> None:
        return None

    assert bind(function, params(a=1)) == {"a": 1}
    assert function(**bind(function, params(a=1))) is None


def test_a_missing_parameter_without_a_default_is_named() -> None:
    def train(data: str, epochs: int) -> None:
        return None

    with pytest.raises(
        BindingError, match=r"argument 'epochs' of .*train\(\) has no value"
    ) as caught:
        bind(train, params(data="x"))
    assert "known: data" in str(caught.value)


def test_kwargs_receives_every_other_parameter() -> None:
    def function(a: int, **kwargs: Any) -> None:
        return None

    assert bind(function, params(a=1, b=2, c="x")) == {"a": 1, "b": 2, "c": "x"}


def test_pickled_values_are_passed_as_they_are() -> None:
    model = object()

    def function(model: Any) -> None:
        return None

    bound = bind(function, {"model": Param(kind="object", value=model)})
    assert bound["model"] is model


def test_json_values_are_private_copies() -> None:
    shared = {"items": [1]}

    def function(data: dict) -> None:
        return None

    bound = bind(function, {"data": Param(kind="json", value=shared)})
    bound["data"]["items"].append(2)
    assert shared == {"items": [1]}


RETURNS = [json("a"), TaskReturn(name="b")]


def _task(returns: list[TaskReturn]) -> PythonTask:
    return PythonTask(name="t", function=print, returns=returns)


def test_returns_are_matched_in_order() -> None:
    collected = collect_returns((1, "two"), _task(RETURNS))
    assert collected == {"a": Param(kind="json", value=1), "b": Param(kind="json", value="two")}


def test_a_single_return_takes_the_whole_result() -> None:
    collected = collect_returns((1, 2), _task([json("pair")]))
    assert collected == {"pair": Param(kind="json", value=[1, 2])}


def test_no_returns_ignores_the_result() -> None:
    assert collect_returns(42, _task([])) == {}


@pytest.mark.parametrize(
    ("result", "got"),
    [((1, 2, 3), "3 values"), (1, "1 value"), ([1], "1 values")],
)
def test_a_count_mismatch_fails(result: Any, got: str) -> None:
    with pytest.raises(
        ReturnError, match=rf"PythonTask 't' declares 2 returns \(a, b\) but returned {got}"
    ):
        collect_returns(result, _task(RETURNS))


def test_a_non_json_value_for_a_json_return_fails_with_the_fix() -> None:
    with pytest.raises(
        ReturnError,
        match=r"return 'thing' is json\(\) but its value of type object is not "
        r"JSON-serialisable.*declare it pickled\('thing'\)",
    ):
        collect_returns(object(), _task([json("thing")]))


def test_a_pydantic_model_return_is_dumped_to_a_dict() -> None:
    collected = collect_returns(Config(x=3), _task([json("config")]))
    assert collected["config"] == Param(kind="json", value={"x": 3, "name": "default"})


def test_metric_and_pickled_returns_keep_their_kind() -> None:
    thing = object()
    collected = collect_returns((0.9, thing), _task([metric("score"), pickled("thing")]))
    assert collected["score"] == Param(kind="metric", value=0.9)
    assert collected["thing"].kind == "object"
    assert collected["thing"].value is thing


def test_a_fraction_is_not_cut_to_an_int() -> None:
    """Issue 17, point 9: ``RUNNABLE_PRM_x=3.7`` reached ``x: int`` as 3."""

    def f(x: int) -> int:
        return x

    with pytest.raises(
        BindingError,
        match=r"argument 'x' = 3\.7 is annotated int, and reading it as one would cut it to 3; "
        r"pass a whole number, or annotate it float",
    ):
        bind(f, {"x": Param(kind="json", value=3.7)})
    assert bind(f, {"x": Param(kind="json", value=3.0)}) == {"x": 3}


def test_a_fraction_from_the_environment_fails_its_step(
    run: Any, monkeypatch: pytest.MonkeyPatch, stored_run_log: Any
) -> None:
    from runnable_dask import ExecutionFailedError, Pipeline, PythonTask

    def use(x: int) -> None:
        raise AssertionError(f"must not run with {x!r}")

    monkeypatch.setenv("RUNNABLE_PRM_x", "3.7")
    with pytest.raises(ExecutionFailedError, match=r"use x: BindingError: argument 'x' = 3\.7"):
        run(Pipeline(steps=[PythonTask(name="use x", function=use)]))
    assert stored_run_log().steps["use x"].status == "FAIL"
