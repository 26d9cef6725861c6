"""Map steps on the `local` executor: where the list comes from, one branch per item, every
iteration runs, reducers, the checks at the map's start and when it is built.

Maps on a real multi-process cluster (1,000 items, maps nested in parallels and the
reverse) are in tests/test_worker_loss.py, which owns this suite's one LocalCluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    ExecutionFailedError,
    Map,
    Parallel,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    Stub,
    metric,
    pickled,
)

Run = Callable[..., Any]
WAIT = 10  # seconds a synchronisation may take before the test counts it as broken


def task(name: str, function: Callable[..., Any], returns: list[Any] | None = None) -> PythonTask:
    return PythonTask(name=name, function=function, returns=returns or [])


def square(item: int) -> int:
    return item * item


def write_params(workdir: Path, text: str) -> str:
    path = workdir / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def square_map(**kwargs: Any) -> Map:
    return Map(
        name="m",
        branch=Pipeline(steps=[task("square", square, ["sq"])]),
        iterate_on="items",
        iterate_as="item",
        **kwargs,
    )


# --- where the list comes from ---------------------------------------------------------


def test_map_over_a_list_from_the_parameters_file(run: Run, workdir: Path) -> None:
    seen: dict[str, Any] = {}

    def after(sq: list[int], items: list[int]) -> None:
        seen.update(sq=sq, items=items)

    pipeline = Pipeline(steps=[square_map(), task("after", after)])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [1, 2, 3]\n"))

    assert run_log.status == "SUCCESS"
    assert list(run_log.steps) == ["m", "after", "success"]
    m = run_log.steps["m"]
    assert (m.status, m.step_type, m.attempts) == ("SUCCESS", "map", [])
    assert list(m.branches) == ["m.1", "m.2", "m.3"]
    for item in (1, 2, 3):
        branch = m.branches[f"m.{item}"]
        assert branch.status == "SUCCESS"
        assert list(branch.steps) == [f"m.{item}.square", f"m.{item}.success"]
        assert branch.parameters["sq"].value == item * item
        attempt = branch.steps[f"m.{item}.square"].attempts[0]
        assert attempt.input_parameters["item"].value == item  # the item, bound to iterate_as
        assert "items" not in attempt.input_parameters  # the list is recorded on the map only
        assert attempt.output_parameters["sq"].value == item * item
    assert seen == {"sq": [1, 4, 9], "items": [1, 2, 3]}
    assert run_log.parameters["sq"].value == [1, 4, 9]


def test_the_console_shows_a_map_start_once_with_its_count(
    run: Run, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(Pipeline(steps=[square_map()]), parameters_file=write_params(workdir, "items: [1, 2, 3]\n"))

    started = [line for line in capsys.readouterr().out.splitlines() if "started" in line]
    assert [line.split() for line in started] == [["started", "m", "(3", "iterations)"]]


def test_map_over_a_list_returned_by_an_earlier_step(run: Run) -> None:
    def make() -> list[str]:
        return ["a", "b", "c"]

    def code(item: str) -> int:
        return ord(item)

    branch = Pipeline(steps=[task("code", code, ["val"])])
    pipeline = Pipeline(
        steps=[
            task("make", make, ["items"]),
            Map(name="m", branch=branch, iterate_on="items", iterate_as="item"),
        ]
    )
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert list(run_log.steps["m"].branches) == ["m.a", "m.b", "m.c"]
    assert run_log.step("m.b.code").attempts[0].output_parameters["val"].value == ord("b")
    assert run_log.parameters["val"].value == [97, 98, 99]


def test_iterations_run_at_the_same_time(run: Run, workdir: Path) -> None:
    barrier = threading.Barrier(3, timeout=WAIT)

    def meet(item: int) -> None:
        barrier.wait()  # passes only when all three iterations are inside it together

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("meet", meet)]),
                iterate_on="items",
                iterate_as="item",
            )
        ]
    )
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [1, 2, 3]\n"))
    assert run_log.status == "SUCCESS"
    assert not barrier.broken


def test_map_inside_a_parallel_branch_reads_a_list_made_in_that_branch(run: Run) -> None:
    def make() -> list[int]:
        return [2, 3]

    def double(n: int) -> int:
        return 2 * n

    inner = Map(
        name="m",
        branch=Pipeline(steps=[task("double", double, ["doubled"])]),
        iterate_on="numbers",
        iterate_as="n",
    )
    branch_a = Pipeline(steps=[task("make", make, ["numbers"]), inner])
    pipeline = Pipeline(
        steps=[
            Parallel(name="par", branches={"a": branch_a, "b": Pipeline(steps=[Stub(name="s")])})
        ]
    )
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    m = run_log.step("par.a.m")
    assert list(m.branches) == ["par.a.m.2", "par.a.m.3"]
    assert run_log.step("par.a.m.3.double").status == "SUCCESS"
    assert run_log.steps["par"].branches["par.a"].parameters["doubled"].value == [4, 6]
    assert run_log.parameters["doubled"].value == [4, 6]


def test_a_float_item_names_its_branch_by_its_text(run: Run, workdir: Path) -> None:
    def scale(rate: float) -> float:
        return rate * 10

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("scale", scale, ["scaled"])]),
                iterate_on="rates",
                iterate_as="rate",
            )
        ]
    )
    run_log = run(pipeline, parameters_file=write_params(workdir, "rates: [0.1, 0.01]\n"))
    assert run_log.status == "SUCCESS"
    assert list(run_log.steps["m"].branches) == ["m.0.1", "m.0.01"]
    step = run_log.step("m.0.1.scale")
    assert step.status == "SUCCESS"
    assert step.attempts[0].input_parameters["rate"].value == 0.1
    assert run_log.steps["m"].branches["m.0.01"].status == "SUCCESS"
    assert run_log.parameters["scaled"].value == [1.0, 0.1]


# --- failures --------------------------------------------------------------------------


def test_every_iteration_runs_when_one_fails_and_the_map_names_it(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    ran = workdir / "ran"
    ran.mkdir()

    def work(item: str) -> int:
        (ran / item).write_text("ran", encoding="utf-8")
        if item == "b":
            raise ValueError("item b is bad")
        return 1

    def after() -> None:
        raise AssertionError("must not run")

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("work", work, ["out"])]),
                iterate_on="items",
                iterate_as="item",
            ),
            task("after", after),
        ]
    )
    params = write_params(workdir, "items: [a, b, c]\n")
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file=params)

    assert sorted(p.name for p in ran.iterdir()) == ["a", "b", "c"]
    run_log = stored_run_log()
    assert run_log.status == "FAIL"
    m = run_log.steps["m"]
    assert m.status == "FAIL"
    assert "b" in m.message
    assert "1 of 3" in m.message
    statuses = {name: branch.status for name, branch in m.branches.items()}
    assert statuses == {"m.a": "SUCCESS", "m.b": "FAIL", "m.c": "SUCCESS"}
    assert list(m.branches["m.b"].steps) == ["m.b.work", "m.b.fail"]
    assert "item b is bad" in run_log.step("m.b.work").message
    assert "after" not in run_log.steps
    assert "out" not in run_log.parameters  # nothing is reduced from a failed map


def test_a_failing_map_goes_to_its_on_failure_pipeline(run: Run, workdir: Path) -> None:
    def work(item: int) -> None:
        if item == 2:
            raise RuntimeError("two fails")

    def recover() -> str:
        return "recovered"

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("work", work)]),
                iterate_on="items",
                iterate_as="item",
                on_failure=Pipeline(steps=[task("recover", recover, ["state"])]),
            ),
            Stub(name="not_reached"),
        ]
    )
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [1, 2]\n"))
    assert run_log.status == "SUCCESS"  # the failure pipeline ended in success
    assert run_log.steps["m"].status == "FAIL"
    assert run_log.steps["recover"].status == "SUCCESS"
    assert "not_reached" not in run_log.steps
    assert run_log.parameters["state"].value == "recovered"


def test_a_failing_parallel_goes_to_its_on_failure_pipeline(run: Run) -> None:
    def broken() -> None:
        raise RuntimeError("branch b breaks")

    def recover() -> str:
        return "recovered"

    pipeline = Pipeline(
        steps=[
            Parallel(
                name="par",
                branches={
                    "a": Pipeline(steps=[Stub(name="fine")]),
                    "b": Pipeline(steps=[task("broken", broken)]),
                },
                on_failure=Pipeline(steps=[task("recover", recover, ["state"])]),
            ),
            Stub(name="not_reached"),
        ]
    )
    run_log = run(pipeline)
    assert run_log.status == "SUCCESS"
    assert run_log.steps["par"].status == "FAIL"
    assert run_log.steps["recover"].status == "SUCCESS"
    assert "not_reached" not in run_log.steps
    assert run_log.parameters["state"].value == "recovered"


# --- reducers --------------------------------------------------------------------------


def test_the_default_reducer_lists_every_returned_name_in_item_order(
    run: Run, workdir: Path
) -> None:
    release_first = threading.Event()

    def work(item: int) -> tuple[int, int]:
        if item == 1:  # the first item finishes last: order is the list's, not time's
            assert release_first.wait(WAIT)
        else:
            release_first.set()
        return item * 10, -item

    branch = Pipeline(steps=[task("work", work, ["tens", "neg"])])
    pipeline = Pipeline(steps=[Map(name="m", branch=branch, iterate_on="items", iterate_as="item")])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [1, 2, 3]\n"))
    assert run_log.parameters["tens"].value == [10, 20, 30]
    assert run_log.parameters["neg"].value == [-1, -2, -3]


def test_a_lambda_reducer(run: Run, workdir: Path) -> None:
    pipeline = Pipeline(steps=[square_map(reducer="lambda *x: max(x)")])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [3, 1, 2]\n"))
    assert run_log.parameters["sq"].value == 9


def test_a_dotted_path_reducer(run: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "my_map_reducers.py").write_text(
        "def total(*values):\n    return sum(values) + 1000\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(workdir))
    pipeline = Pipeline(steps=[square_map(reducer="my_map_reducers.total")])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [1, 2, 3]\n"))
    assert run_log.parameters["sq"].value == 1000 + 1 + 4 + 9


def test_a_reducer_that_raises_fails_the_map_with_its_message(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    pipeline = Pipeline(steps=[square_map(reducer="lambda *x: x[0] / 0")])
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file=write_params(workdir, "items: [1, 2]\n"))
    run_log = stored_run_log()
    m = run_log.steps["m"]
    assert m.status == "FAIL"
    assert "ZeroDivisionError" in m.message
    assert "lambda *x: x[0] / 0" in m.message
    assert {b.status for b in m.branches.values()} == {"SUCCESS"}  # the iterations did run
    assert run_log.status == "FAIL"


def test_metric_and_pickled_returns_inside_a_map(run: Run, workdir: Path) -> None:
    class Model:
        def __init__(self, item: int) -> None:
            self.item = item

    def train(item: int) -> tuple[Model, float]:
        return Model(item), item / 10

    seen: dict[str, Any] = {}

    def collect(model: list[Model], score: list[float]) -> None:
        seen.update(items=[m.item for m in model], score=score)

    branch = Pipeline(steps=[task("train", train, [pickled("model"), metric("score")])])
    pipeline = Pipeline(
        steps=[
            Map(name="m", branch=branch, iterate_on="items", iterate_as="item"),
            task("collect", collect),
        ]
    )
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: [1, 2, 3]\n"))
    assert run_log.status == "SUCCESS"
    assert seen == {"items": [1, 2, 3], "score": [0.1, 0.2, 0.3]}  # each iteration its own
    attempt = run_log.step("m.2.train").attempts[0]
    assert attempt.user_defined_metrics == {"score": 0.2}
    assert attempt.output_parameters["model"].kind == "object"
    assert attempt.output_parameters["score"].kind == "metric"
    assert run_log.parameters["model"].kind == "object"
    assert run_log.parameters["score"].value == [0.1, 0.2, 0.3]


# --- checks when the map starts --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("other: 1\n", ["'items'", "not a parameter"]),
        ("items: 5\n", ["'items'", "int", "expected a list"]),
        ("items: {a: 1}\n", ["'items'", "dict", "expected a list"]),
    ],
)
def test_iterate_on_missing_or_not_a_list_fails_the_map(
    run: Run,
    workdir: Path,
    stored_run_log: Callable[..., Any],
    params: str,
    expected: list[str],
) -> None:
    ran: list[int] = []

    def work(item: int) -> None:
        ran.append(item)

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("work", work)]),
                iterate_on="items",
                iterate_as="item",
            )
        ]
    )
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file=write_params(workdir, params))
    m = stored_run_log().steps["m"]
    assert m.status == "FAIL"
    for text in expected:
        assert text in m.message
    assert m.branches == {}
    assert ran == []


def test_items_that_read_the_same_as_text_are_refused(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    ran: list[Any] = []

    def work(item: Any) -> None:
        ran.append(item)

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("work", work)]),
                iterate_on="items",
                iterate_as="item",
            )
        ]
    )
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file=write_params(workdir, "items: [1, '1', 2]\n"))
    m = stored_run_log().steps["m"]
    assert m.status == "FAIL"
    assert "read the same as text" in m.message
    assert "(1)" in m.message  # names the repeated text
    assert "distinct" in m.message
    assert ran == []


# --- checks when the map is built ------------------------------------------------------


BRANCH = Pipeline(steps=[Stub(name="s")])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"iterate_on": "not a name"}, "'not a name' is not a parameter name"),
        ({"iterate_as": "1x"}, "'1x' is not a parameter name"),
        ({"reducer": "lambda *x: max(x"}, "is not a valid lambda"),
        ({"reducer": "maximum"}, "neither a 'lambda *x: ...' string nor a dotted path"),
        ({"branch": Stub(name="s")}, "expected a Pipeline"),
        ({"iterate_on": None}, "iterate_on"),
        ({"iterate_as": None}, "iterate_as"),
    ],
)
def test_bad_map_fields_are_refused_when_built(kwargs: dict[str, Any], expected: str) -> None:
    fields: dict[str, Any] = {
        "name": "sweep",
        "branch": BRANCH,
        "iterate_on": "items",
        "iterate_as": "item",
    }
    fields.update(kwargs)
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises(PipelineDefinitionError) as info:
        Map(**fields)
    assert "Map 'sweep'" in str(info.value)
    assert expected in str(info.value)


def test_a_map_without_iterate_on_is_refused_naming_the_field() -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        Map(name="sweep", branch=BRANCH, iterate_as="item")
    assert "Map 'sweep': field 'iterate_on' is required" in str(info.value)


def test_an_empty_list_runs_no_iteration_and_succeeds(run: Run, workdir: Path) -> None:
    pipeline = Pipeline(steps=[square_map(), Stub(name="after")])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: []\n"))
    assert run_log.status == "SUCCESS"
    assert run_log.steps["m"].status == "SUCCESS"
    assert run_log.steps["m"].branches == {}
    assert run_log.steps["after"].status == "SUCCESS"


def test_a_map_inside_a_map(run: Run, workdir: Path) -> None:
    def join(outer: str, inner: int) -> str:
        return f"{outer}{inner}"

    inner = Map(
        name="inner",
        branch=Pipeline(steps=[task("join", join, ["word"])]),
        iterate_on="numbers",
        iterate_as="inner",
    )
    pipeline = Pipeline(
        steps=[
            Map(
                name="outer",
                branch=Pipeline(steps=[inner]),
                iterate_on="letters",
                iterate_as="outer",
            )
        ]
    )
    params = write_params(workdir, "letters: [a, b]\nnumbers: [1, 2]\n")
    run_log = run(pipeline, parameters_file=params)
    assert run_log.status == "SUCCESS"
    assert list(run_log.step("outer.b.inner").branches) == ["outer.b.inner.1", "outer.b.inner.2"]
    assert run_log.step("outer.b.inner.2.join").attempts[0].output_parameters["word"].value == "b2"
    assert run_log.parameters["word"].value == [["a1", "a2"], ["b1", "b2"]]


def test_many_failed_items_are_listed_up_to_ten(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    def work(item: int) -> None:
        if item >= 3:
            raise ValueError(f"item {item}")

    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[task("work", work)]),
                iterate_on="items",
                iterate_as="item",
            )
        ]
    )
    items = list(range(20))
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file=write_params(workdir, f"items: {items}\n"))
    m = stored_run_log().steps["m"]
    assert m.message.startswith("17 of 20 iterations failed: 3, 4, 5")
    assert m.message.endswith("12 and 7 more")
    assert len(m.branches) == 20


# --- a map over an empty list reduces to nothing (issue 17, point 9) -------------------


def test_an_empty_list_reduces_to_an_empty_list_the_next_step_reads(
    run: Run, workdir: Path
) -> None:
    def count(sq: list[int]) -> int:
        return len(sq)

    pipeline = Pipeline(steps=[square_map(), task("count", count, ["n"])])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: []\n"))
    assert run_log.parameters["sq"].value == []
    assert run_log.parameters["n"].value == 0


def test_an_empty_list_calls_a_custom_reducer_with_no_values(run: Run, workdir: Path) -> None:
    pipeline = Pipeline(steps=[square_map(reducer="lambda *x: max(x, default=-1)")])
    run_log = run(pipeline, parameters_file=write_params(workdir, "items: []\n"))
    assert run_log.parameters["sq"].value == -1


def test_a_reducer_that_needs_values_fails_an_empty_map_saying_why(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    pipeline = Pipeline(steps=[square_map(reducer="lambda *x: max(x)")])
    with pytest.raises(ExecutionFailedError):
        run(pipeline, parameters_file=write_params(workdir, "items: []\n"))
    assert stored_run_log().steps["m"].message == (
        "reducer 'lambda *x: max(x)' raised ValueError: max() arg is an empty sequence; "
        "'items' was empty, so the reducer was called with no values: make it accept none "
        "(e.g. 'lambda *x: max(x, default=None)')"
    )
