"""``Map(batch_size=N)`` on the `local` executor: several items per task, and still, per
item, its record in the run log, its retries, its failure named, and on resume only the
failed items run again. The same on a real cluster, and with a worker killed mid-batch,
is in tests/test_worker_loss.py and tests/cluster/test_faults.py.
"""

from __future__ import annotations

from collections import Counter
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
)
from runnable_dask.lower import Lowering
from runnable_dask.plan import build_plan
from runnable_dask.runtime.context import RunContext

Run = Callable[..., Any]


def batched_map(branch_steps: list[Any], batch_size: int = 4) -> Map:
    return Map(
        name="m",
        branch=Pipeline(steps=branch_steps),
        iterate_on="items",
        iterate_as="item",
        batch_size=batch_size,
    )


def write_params(workdir: Path, n: int) -> str:
    path = workdir / "params.yaml"
    path.write_text(f"items: {list(range(n))}\n", encoding="utf-8")
    return str(path)


def test_each_item_of_a_batched_map_keeps_its_own_record(run: Run, workdir: Path) -> None:
    def inc(item: int) -> int:
        return item + 1

    def double(y: int) -> int:
        return 2 * y

    seen: dict[str, Any] = {}
    branch = [
        PythonTask(name="inc", function=inc, returns=["y"]),
        PythonTask(name="double", function=double, returns=["z"]),
    ]
    after = PythonTask(name="after", function=lambda z: seen.update(z=z))
    run_log = run(
        Pipeline(steps=[batched_map(branch), after]), parameters_file=write_params(workdir, 10)
    )

    assert run_log.status == "SUCCESS"
    assert seen["z"] == [2 * (i + 1) for i in range(10)]  # reduced in the list's order
    m = run_log.steps["m"]
    assert list(m.branches) == [f"m.{i}" for i in range(10)]
    for i in range(10):
        branch_log = m.branches[f"m.{i}"]
        assert branch_log.status == "SUCCESS"
        assert list(branch_log.steps) == [f"m.{i}.inc", f"m.{i}.double", f"m.{i}.success"]
        inc_attempt = branch_log.steps[f"m.{i}.inc"].attempts[0]
        assert inc_attempt.input_parameters["item"].value == i
        assert inc_attempt.output_parameters["y"].value == i + 1
        assert branch_log.parameters["z"].value == 2 * (i + 1)


def test_a_batched_map_sent_in_parts_keeps_every_items_record(
    run: Run, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runnable_dask.lower.BATCHES_PER_PART", 2)

    def inc(item: int) -> int:
        return item + 1

    seen: dict[str, Any] = {}
    branch = [PythonTask(name="inc", function=inc, returns=["y"])]
    after = PythonTask(name="after", function=lambda y: seen.update(y=y))
    run_log = run(
        Pipeline(steps=[batched_map(branch, batch_size=2), after]),
        parameters_file=write_params(workdir, 11),  # 6 batches, in 3 parts
    )

    assert run_log.status == "SUCCESS"
    assert seen["y"] == [i + 1 for i in range(11)]
    m = run_log.steps["m"]
    assert [b.status for b in m.branches.values()] == ["SUCCESS"] * 11
    assert run_log.step("m.10.inc").attempts[0].output_parameters["y"].value == 11


def test_a_failing_item_is_named_and_the_others_of_its_batch_succeed(
    run: Run, workdir: Path, stored_run_log: Callable[..., Any]
) -> None:
    def check(item: int) -> int:
        if item == 5:
            raise ValueError(f"item {item} is bad")
        return item

    with pytest.raises(ExecutionFailedError, match=r"m\.5\.check: ValueError: item 5 is bad"):
        run(
            Pipeline(steps=[batched_map([PythonTask(name="check", function=check)])]),
            parameters_file=write_params(workdir, 8),
        )

    m = stored_run_log().steps["m"]
    assert m.status == "FAIL"
    assert m.message == "1 of 8 iterations failed: 5"
    statuses = {name: branch.status for name, branch in m.branches.items()}
    assert statuses == {f"m.{i}": "FAIL" if i == 5 else "SUCCESS" for i in range(8)}
    assert m.branches["m.5"].steps["m.5.check"].attempts[0].message == "ValueError: item 5 is bad"


def test_each_item_retries_on_its_own(run: Run, workdir: Path) -> None:
    calls: Counter[int] = Counter()

    def flaky(item: int) -> None:
        calls[item] += 1
        if item == 2 and calls[item] < 3:
            raise RuntimeError("not yet")

    step = PythonTask(name="flaky", function=flaky, retries=2)
    run_log = run(Pipeline(steps=[batched_map([step])]), parameters_file=write_params(workdir, 6))

    assert run_log.status == "SUCCESS"
    assert calls == {0: 1, 1: 1, 2: 3, 3: 1, 4: 1, 5: 1}
    attempts = run_log.step("m.2.flaky").attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [
        (1, "FAIL"),
        (2, "FAIL"),
        (3, "SUCCESS"),
    ]
    assert len(run_log.step("m.3.flaky").attempts) == 1


def test_resume_runs_only_the_failed_items_again(run: Run, workdir: Path) -> None:
    runs = workdir / "runs.txt"
    fixed = workdir / "fixed"

    def work(item: int) -> int:
        with runs.open("a", encoding="utf-8") as handle:
            handle.write(f"{item}\n")
        if item in (1, 6) and not fixed.exists():
            raise RuntimeError(f"item {item} is not fixed yet")
        return item * 10

    def build() -> Pipeline:
        branch = [PythonTask(name="work", function=work, returns=["w"]), Stub(name="tail")]
        return Pipeline(steps=[batched_map(branch, batch_size=3), Stub(name="after")])

    params = write_params(workdir, 8)
    with pytest.raises(ExecutionFailedError):
        run(build(), parameters_file=params)
    fixed.write_text("yes", encoding="utf-8")
    run_log = run(build(), parameters_file=params)

    assert run_log.status == "SUCCESS"
    ran = Counter(int(line) for line in runs.read_text(encoding="utf-8").split())
    assert ran == {i: 2 if i in (1, 6) else 1 for i in range(8)}
    assert run_log.parameters["w"].value == [i * 10 for i in range(8)]
    attempts = run_log.step("m.6.work").attempts
    assert [(a.attempt_number, a.status) for a in attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert len(run_log.step("m.0.work").attempts) == 1


def test_a_batched_map_is_a_task_per_batch() -> None:
    plan = build_plan(Pipeline(steps=[batched_map([Stub(name="a"), Stub(name="b")], batch_size=4)]))
    ctx = RunContext(run_id="r", catalog_location=".catalog", reporter=lambda events: None)
    lowering = Lowering(plan, ctx)
    part, _ = lowering.first({})
    (frontier,) = part.frontiers.values()
    (expansion,) = lowering.expand(frontier, tuple(str(i) for i in range(10)))
    batches = [key for key in expansion.tasks if key != frontier.join]
    assert len(batches) == 3  # 4 + 4 + 2 items
    assert all(key.startswith("a-") for key in batches)  # grouped under the first step's name
    assert expansion.deps[frontier.join] == (*batches, frontier.token)


def test_a_big_batched_map_is_lowered_in_parts_its_join_in_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("runnable_dask.lower.BATCHES_PER_PART", 2)
    plan = build_plan(Pipeline(steps=[batched_map([Stub(name="a")], batch_size=2)]))
    ctx = RunContext(run_id="r", catalog_location=".catalog", reporter=lambda events: None)
    lowering = Lowering(plan, ctx)
    part, _ = lowering.first({})
    (frontier,) = part.frontiers.values()
    parts = list(lowering.expand(frontier, tuple(str(i) for i in range(9))))

    batches = [[key for key in p.tasks if key != frontier.join] for p in parts]
    assert [len(keys) for keys in batches] == [2, 2, 1]  # 5 batches: 2 + 2 + 2 + 2 + 1 items
    assert frontier.join in parts[0].tasks
    assert not any(frontier.join in p.tasks for p in parts[1:])
    every = [key for keys in batches for key in keys]
    assert parts[0].deps[frontier.join] == (*every, frontier.token)
    items = [len(p.tasks[k][2].items) for p, keys in zip(parts, batches, strict=True) for k in keys]
    assert items == [2, 2, 2, 2, 1]


def test_a_batch_asks_for_the_most_its_steps_ask_for() -> None:
    steps = [
        PythonTask(name="load", function=print, resources={"MEMORY": 4e9}),
        PythonTask(name="fit", function=print, resources={"GPU": 1, "MEMORY": 1e9}),
    ]
    mapped = Map(
        name="m",
        branch=Pipeline(steps=steps),
        iterate_on="items",
        iterate_as="item",
        batch_size=2,
        resources={"GPU": 0.5},
    )
    plan = build_plan(Pipeline(steps=[mapped]))
    ctx = RunContext(run_id="r", catalog_location=".catalog", reporter=lambda events: None)
    lowering = Lowering(plan, ctx)
    part, _ = lowering.first({})
    (frontier,) = part.frontiers.values()
    (expansion,) = lowering.expand(frontier, ("a", "b", "c"))
    assert list(expansion.resources.values()) == [{"GPU": 1, "MEMORY": 4e9}] * 2


@pytest.mark.parametrize(
    ("batch_size", "branch", "message"),
    [
        (0, [Stub(name="s")], r"batch_size: 0 is not a whole number of at least 1"),
        (2.5, [Stub(name="s")], r"batch_size: 2.5 is not a whole number of at least 1"),
        ("10", [Stub(name="s")], r"batch_size: '10' is not a whole number"),
        (
            5,
            [Parallel(name="p", branches={"x": Pipeline(steps=[Stub(name="s")])})],
            r"batch_size=5 needs a branch of tasks in a row without on_failure, but "
            r"Parallel 'p' is a Parallel",
        ),
        (
            5,
            [Stub(name="s", on_failure=Pipeline(steps=[Stub(name="f")]))],
            r"batch_size=5 needs .*, but Stub 's' has on_failure; leave batch_size out",
        ),
    ],
)
def test_a_bad_batch_size_is_refused_when_the_map_is_built(
    batch_size: Any, branch: list[Any], message: str
) -> None:
    with pytest.raises(PipelineDefinitionError, match=rf"Map 'm': {message}"):
        batched_map(branch, batch_size=batch_size)
