"""Resuming a failed run with ``execute(run_id=<its id>)`` on the `local` executor: only
failed and unrun steps run again (counted with files), attempts are appended, the stored
parameters are reused, and a changed definition or a succeeded run is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runnable_dask import (
    ConfigurationError,
    ExecutionFailedError,
    Loop,
    Map,
    Pipeline,
    PythonTask,
    Stub,
    pickled,
)
from runnable_dask.exceptions import RunLogExistsError

Run = Callable[..., Any]


class Counter:
    """Counts real executions of named steps in files, and holds the flag that lets the
    flaky step pass."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir()
        self.flag = folder.parent / "fixed.flag"

    def hit(self, name: str) -> None:
        with (self.folder / name).open("a", encoding="utf-8") as handle:
            handle.write("ran\n")

    def count(self, name: str) -> int:
        path = self.folder / name
        return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0

    def fail_unless_fixed(self, what: str) -> None:
        if not self.flag.exists():
            raise RuntimeError(f"{what} is not fixed yet")

    def fix(self) -> None:
        self.flag.write_text("fixed", encoding="utf-8")


@pytest.fixture
def counter(workdir: Path) -> Counter:
    return Counter(workdir / "counts")


def three_steps(counter: Counter) -> Pipeline:
    def one() -> int:
        counter.hit("one")
        return 1

    def two(a: int) -> int:
        counter.hit("two")
        counter.fail_unless_fixed("two")
        return a + 1

    def three(b: int) -> int:
        counter.hit("three")
        return b + 1

    return Pipeline(
        steps=[
            PythonTask(name="one", function=one, returns=["a"]),
            PythonTask(name="two", function=two, returns=["b"]),
            PythonTask(name="three", function=three, returns=["c"]),
        ]
    )


def test_resume_reruns_only_failed_and_unrun_steps(
    run: Run, counter: Counter, stored_run_log: Callable[..., Any]
) -> None:
    with pytest.raises(ExecutionFailedError):
        run(three_steps(counter))
    failed = stored_run_log()
    assert failed.status == "FAIL"
    assert failed.steps["two"].status == "FAIL"
    assert "three" not in failed.steps
    assert [counter.count(n) for n in ("one", "two", "three")] == [1, 1, 0]

    counter.fix()
    run_log = run(three_steps(counter))  # the same run id: resumes it

    assert run_log.status == "SUCCESS"
    assert run_log.run_id == failed.run_id
    assert [counter.count(n) for n in ("one", "two", "three")] == [1, 2, 1]
    two = run_log.steps["two"]
    assert two.status == "SUCCESS"
    assert [(a.attempt_number, a.status) for a in two.attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert "two is not fixed yet" in two.attempts[0].message
    assert [(a.attempt_number, a.status) for a in run_log.steps["one"].attempts] == [(1, "SUCCESS")]
    assert run_log.steps["three"].status == "SUCCESS"
    assert run_log.parameters["c"].value == 3
    assert stored_run_log() == run_log


def test_resume_reruns_only_the_failed_iterations_of_a_map(
    run: Run, counter: Counter, workdir: Path
) -> None:
    def build() -> Pipeline:
        def work(item: str) -> str:
            counter.hit(item)
            if item == "b":
                counter.fail_unless_fixed("item b")
            return item.upper()

        branch = Pipeline(steps=[PythonTask(name="work", function=work, returns=["up"])])
        return Pipeline(
            steps=[
                Map(name="m", branch=branch, iterate_on="items", iterate_as="item"),
                Stub(name="after"),
            ]
        )

    params = workdir / "params.yaml"
    params.write_text("items: [a, b, c]\n", encoding="utf-8")
    with pytest.raises(ExecutionFailedError):
        run(build(), parameters_file=str(params))
    assert [counter.count(i) for i in "abc"] == [1, 1, 1]

    counter.fix()
    run_log = run(build(), parameters_file=str(params))
    assert run_log.status == "SUCCESS"
    assert [counter.count(i) for i in "abc"] == [1, 2, 1]
    attempts = run_log.step("m.b.work").attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert len(run_log.step("m.a.work").attempts) == 1
    assert run_log.steps["m"].status == "SUCCESS"
    assert {b.status for b in run_log.steps["m"].branches.values()} == {"SUCCESS"}
    assert run_log.parameters["up"].value == ["A", "B", "C"]


def test_resume_reuses_the_stored_parameters(
    run: Run, counter: Counter, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def build() -> Pipeline:
        def use(x: int) -> None:
            seen.append(x)
            counter.fail_unless_fixed("use")

        return Pipeline(steps=[PythonTask(name="use", function=use)])

    params = workdir / "params.yaml"
    params.write_text("x: 1\n", encoding="utf-8")
    with pytest.raises(ExecutionFailedError):
        run(build(), parameters_file=str(params))

    params.write_text("x: 2\n", encoding="utf-8")
    monkeypatch.setenv("RUNNABLE_PRM_x", "3")
    counter.fix()
    run_log = run(build(), parameters_file=str(params))
    assert seen == [1, 1]
    assert run_log.steps["use"].attempts[-1].input_parameters["x"].value == 1
    assert run_log.parameters["x"].value == 1


def test_a_pickled_value_made_before_the_failure_is_there_after_resume(
    run: Run, counter: Counter
) -> None:
    class Model:
        def __init__(self, weight: float) -> None:
            self.weight = weight

    seen: list[float] = []

    def build() -> Pipeline:
        def train() -> Model:
            counter.hit("train")
            return Model(0.75)

        def evaluate(model: Model) -> float:
            counter.fail_unless_fixed("evaluate")
            seen.append(model.weight)
            return model.weight * 2

        return Pipeline(
            steps=[
                PythonTask(name="train", function=train, returns=[pickled("model")]),
                PythonTask(name="evaluate", function=evaluate, returns=["score"]),
            ]
        )

    with pytest.raises(ExecutionFailedError):
        run(build())
    counter.fix()
    run_log = run(build())
    assert run_log.status == "SUCCESS"
    assert counter.count("train") == 1
    assert seen == [0.75]
    assert run_log.parameters["score"].value == 1.5
    assert run_log.parameters["model"].kind == "object"


def test_resume_is_refused_when_the_definition_changed(
    run: Run, counter: Counter, stored_run_log: Callable[..., Any]
) -> None:
    with pytest.raises(ExecutionFailedError):
        run(three_steps(counter))
    before = stored_run_log()

    def extra() -> None:
        counter.hit("extra")

    changed = Pipeline(
        steps=[*three_steps(counter).steps, PythonTask(name="extra", function=extra)]
    )
    counter.fix()
    with pytest.raises(ConfigurationError) as info:
        run(changed)
    message = str(info.value)
    assert "dag hash" in message
    assert before.dag_hash[:12] in message
    assert "test-run" in message
    assert stored_run_log() == before  # untouched
    assert [counter.count(n) for n in ("one", "two", "three", "extra")] == [1, 1, 0, 0]


def test_resume_is_refused_for_a_run_that_succeeded(
    run: Run, counter: Counter, stored_run_log: Callable[..., Any]
) -> None:
    counter.fix()
    run(three_steps(counter))
    before = stored_run_log()
    with pytest.raises(RunLogExistsError) as info:
        run(three_steps(counter))
    assert "succeeded already" in str(info.value)
    assert "test-run" in str(info.value)
    assert [counter.count(n) for n in ("one", "two", "three")] == [1, 1, 1]
    assert stored_run_log() == before


def test_attempt_numbers_continue_after_in_run_retries(run: Run, counter: Counter) -> None:
    def build() -> Pipeline:
        def flaky() -> None:
            counter.hit("flaky")
            counter.fail_unless_fixed("flaky")

        return Pipeline(steps=[PythonTask(name="flaky", function=flaky, retries=1)])

    with pytest.raises(ExecutionFailedError):
        run(build())
    counter.fix()
    run_log = run(build())
    attempts = run_log.steps["flaky"].attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [
        (1, "FAIL"),
        (2, "FAIL"),
        (3, "SUCCESS"),
    ]
    assert counter.count("flaky") == 3


def test_resume_reruns_a_loop_from_its_failed_iteration(run: Run, counter: Counter) -> None:
    def build() -> Pipeline:
        def body(idx: int) -> None:
            counter.hit(f"body{idx}")
            if idx == 1:
                counter.fail_unless_fixed("iteration 1")

        branch = Pipeline(steps=[PythonTask(name="body", function=body)])
        return Pipeline(
            steps=[
                Loop(name="lp", branch=branch, max_iterations=3, break_on="stop", index_as="idx")
            ]
        )

    with pytest.raises(ExecutionFailedError):
        run(build())
    assert [counter.count(f"body{i}") for i in range(3)] == [1, 1, 0]
    counter.fix()
    run_log = run(build())
    assert run_log.status == "SUCCESS"
    assert [counter.count(f"body{i}") for i in range(3)] == [1, 2, 1]
    assert list(run_log.steps["lp"].branches) == ["lp.0", "lp.1", "lp.2"]
    attempts = run_log.step("lp.1.body").attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [(1, "FAIL"), (2, "SUCCESS")]
