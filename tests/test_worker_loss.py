"""The ``dask`` executor on one real multi-process ``LocalCluster`` (2 worker processes on
127.0.0.1, no dashboard): a map of 1,000 items, maps nested in parallels and parallels in
maps, and a worker process killed by its pid while it runs a step.

The cluster is started once for this module; every test connects to it by ``address``.
The worker-killing test is last: the nanny restarts the killed worker afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from distributed import LocalCluster

from runnable_dask import ExecutionFailedError, Map, Parallel, Pipeline, PythonTask, Stub
from runnable_dask.runtime import checkpoint
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog_store import RunLogStore

pytestmark = pytest.mark.cluster

N_ITEMS = 1000
LOST_MESSAGE = "the worker running this attempt was lost; Dask ran the step again"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local_cluster:
        yield local_cluster


@pytest.fixture
def on_cluster(cluster: LocalCluster, workdir: Path) -> str:
    """A configuration file in the test's working folder pointing at the shared cluster."""
    path = workdir / "dask.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"address": cluster.scheduler_address},
                }
            }
        ),
        encoding="utf-8",
    )
    return str(path)


def write_params(workdir: Path, values: dict[str, object]) -> str:
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(path)


# --- step functions (top level: worker processes import them by reference) ------------


def double(item: int) -> int:
    return 2 * item


def make_numbers() -> list[int]:
    return [10, 20]


def add_one(n: int) -> int:
    return n + 1


def times_2(item: int) -> int:
    return item * 2


def times_3(item: int) -> int:
    return item * 3


def count_and_pass(count_file: str) -> None:
    with open(count_file, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")


def write_pid_then_sleep(pid_file: str) -> int:
    """First attempt: tell the test which process runs it, then sleep until killed.
    A later attempt (the file exists) returns at once."""
    path = Path(pid_file)
    if path.exists():
        return int(path.read_text(encoding="utf-8"))
    path.write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(60)
    return -1


# --- maps on the cluster ---------------------------------------------------------------


def test_a_map_of_a_thousand_items(on_cluster: str, workdir: Path) -> None:
    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[PythonTask(name="double", function=double, returns=["d"])]),
                iterate_on="items",
                iterate_as="item",
                reducer="lambda *x: sum(x)",
            ),
            Stub(name="after"),
        ]
    )
    params = write_params(workdir, {"items": list(range(N_ITEMS))})
    run_log = pipeline.execute(configuration_file=on_cluster, run_id="wide", parameters_file=params)

    assert run_log.status == "SUCCESS"
    m = run_log.steps["m"]
    assert m.status == "SUCCESS"
    assert list(m.branches) == [f"m.{i}" for i in range(N_ITEMS)]
    assert all(b.status == "SUCCESS" for b in m.branches.values())
    assert all(
        b.steps[f"m.{i}.double"].status == "SUCCESS" for i, b in enumerate(m.branches.values())
    )
    assert m.branches["m.999"].parameters["d"].value == 1998
    assert run_log.parameters["d"].value == 2 * sum(range(N_ITEMS))
    assert RunLogStore(workdir / ".run_log_store").read("wide") == run_log


def double_unless_fixed(item: int, fixed_flag: str) -> int:
    """Item 123 fails until the flag file exists; every run of an item leaves its line."""
    folder = Path(fixed_flag).parent
    with (folder / "runs.txt").open("a", encoding="utf-8") as handle:
        handle.write(f"{item}\n")
    if item == 123 and not Path(fixed_flag).exists():
        raise ValueError("item 123 is not fixed yet")
    return 2 * item


def test_a_batched_map_of_a_thousand_items_resumes_only_its_failed_item(
    on_cluster: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its 10 batches sent in four parts (3, 3, 3 and 1), the join waiting for the last.
    monkeypatch.setattr("runnable_dask.lower.BATCHES_PER_PART", 3)
    step = PythonTask(name="double", function=double_unless_fixed, returns=["d"])
    pipeline = Pipeline(
        steps=[
            Map(
                name="m",
                branch=Pipeline(steps=[step]),
                iterate_on="items",
                iterate_as="item",
                reducer="lambda *x: sum(x)",
                batch_size=100,
            ),
            Stub(name="after"),
        ]
    )
    flag = workdir / "fixed.flag"
    params = write_params(workdir, {"items": list(range(N_ITEMS)), "fixed_flag": str(flag)})
    with pytest.raises(ExecutionFailedError, match=r"m\.123\.double: ValueError: item 123"):
        pipeline.execute(configuration_file=on_cluster, run_id="batched", parameters_file=params)
    failed = RunLogStore(workdir / ".run_log_store").read("batched")
    m = failed.steps["m"]
    assert m.message == f"1 of {N_ITEMS} iterations failed: 123"
    assert [name for name, b in m.branches.items() if b.status != "SUCCESS"] == ["m.123"]
    assert len(m.branches) == N_ITEMS

    flag.write_text("fixed", encoding="utf-8")
    run_log = pipeline.execute(
        configuration_file=on_cluster, run_id="batched", parameters_file=params
    )

    assert run_log.status == "SUCCESS"
    assert run_log.parameters["d"].value == 2 * sum(range(N_ITEMS))
    ran = Counter(int(line) for line in (workdir / "runs.txt").read_text().split())
    assert ran == {i: 2 if i == 123 else 1 for i in range(N_ITEMS)}
    attempts = run_log.step("m.123.double").attempts
    assert [a.status for a in attempts] == ["FAIL", "SUCCESS"]
    assert all(b.status == "SUCCESS" for b in run_log.steps["m"].branches.values())


def test_maps_nested_in_a_parallel(on_cluster: str, workdir: Path) -> None:
    from_params = Map(
        name="m",
        branch=Pipeline(steps=[PythonTask(name="double", function=double, returns=["doubled"])]),
        iterate_on="items",
        iterate_as="item",
    )
    from_branch = Map(
        name="m",
        branch=Pipeline(steps=[PythonTask(name="add", function=add_one, returns=["added"])]),
        iterate_on="numbers",
        iterate_as="n",
    )
    pipeline = Pipeline(
        steps=[
            Parallel(
                name="par",
                branches={
                    "a": Pipeline(steps=[from_params]),
                    "b": Pipeline(
                        steps=[
                            PythonTask(name="make", function=make_numbers, returns=["numbers"]),
                            from_branch,
                        ]
                    ),
                },
            )
        ]
    )
    params = write_params(workdir, {"items": [1, 2, 3]})
    run_log = pipeline.execute(
        configuration_file=on_cluster, run_id="map-in-par", parameters_file=params
    )
    assert run_log.status == "SUCCESS"
    assert list(run_log.step("par.a.m").branches) == ["par.a.m.1", "par.a.m.2", "par.a.m.3"]
    assert list(run_log.step("par.b.m").branches) == ["par.b.m.10", "par.b.m.20"]
    assert run_log.step("par.a.m.3.double").status == "SUCCESS"
    assert run_log.step("par.b.m.20.add").status == "SUCCESS"
    assert run_log.parameters["doubled"].value == [2, 4, 6]
    assert run_log.parameters["added"].value == [11, 21]


def test_parallels_nested_in_a_map(on_cluster: str, workdir: Path) -> None:
    branch = Pipeline(
        steps=[
            Parallel(
                name="par",
                branches={
                    "x": Pipeline(
                        steps=[PythonTask(name="two", function=times_2, returns=["by_two"])]
                    ),
                    "y": Pipeline(
                        steps=[PythonTask(name="three", function=times_3, returns=["by_three"])]
                    ),
                },
            )
        ]
    )
    pipeline = Pipeline(steps=[Map(name="m", branch=branch, iterate_on="items", iterate_as="item")])
    params = write_params(workdir, {"items": [1, 2, 3]})
    run_log = pipeline.execute(
        configuration_file=on_cluster, run_id="par-in-map", parameters_file=params
    )
    assert run_log.status == "SUCCESS"
    assert list(run_log.steps["m"].branches) == ["m.1", "m.2", "m.3"]
    for item in (1, 2, 3):
        par = run_log.step(f"m.{item}.par")
        assert par.status == "SUCCESS"
        assert sorted(par.branches) == [f"m.{item}.par.x", f"m.{item}.par.y"]
        assert run_log.step(f"m.{item}.par.y.three").status == "SUCCESS"
    assert run_log.parameters["by_two"].value == [2, 4, 6]
    assert run_log.parameters["by_three"].value == [3, 6, 9]


# --- a worker lost while it runs a step ------------------------------------------------


@pytest.mark.timeout(120)
def test_a_worker_killed_while_running_a_step_does_not_fail_the_run(
    on_cluster: str, workdir: Path
) -> None:
    pid_file = workdir / "pid.txt"
    count_file = workdir / "before.txt"
    killed: list[int] = []
    errors: list[BaseException] = []

    def kill_when_running() -> None:
        try:
            deadline = time.monotonic() + 60
            while not pid_file.exists() or not pid_file.read_text(encoding="utf-8"):
                if time.monotonic() > deadline:
                    raise TimeoutError("the step never wrote its pid")
                time.sleep(0.05)
            time.sleep(0.5)  # the step is asleep now; its start has reached the driver
            pid = int(pid_file.read_text(encoding="utf-8"))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except BaseException as exc:
            errors.append(exc)

    pipeline = Pipeline(
        steps=[
            PythonTask(name="before", function=count_and_pass),
            PythonTask(name="sleeper", function=write_pid_then_sleep, returns=["first_pid"]),
            Stub(name="after"),
        ]
    )
    params = write_params(workdir, {"pid_file": str(pid_file), "count_file": str(count_file)})
    killer = threading.Thread(target=kill_when_running, daemon=True)
    killer.start()
    run_log = pipeline.execute(
        configuration_file=on_cluster, run_id="lost-worker", parameters_file=params
    )
    killer.join(timeout=10)

    assert errors == []
    assert killed and killed[0] != os.getpid()
    assert run_log.status == "SUCCESS"
    sleeper = run_log.steps["sleeper"]
    assert sleeper.status == "SUCCESS"
    assert [(a.attempt_number, a.status) for a in sleeper.attempts] == [(1, "FAIL"), (2, "SUCCESS")]
    assert "worker" in sleeper.attempts[0].message and "lost" in sleeper.attempts[0].message
    assert sleeper.attempts[0].message == LOST_MESSAGE
    assert sleeper.attempts[1].output_parameters["first_pid"].value == killed[0]
    assert run_log.parameters["first_pid"].value == killed[0]
    # The step before ran once, even if its result lived on the lost worker.
    assert len(count_file.read_text(encoding="utf-8").splitlines()) == 1
    assert [(a.attempt_number, a.status) for a in run_log.steps["before"].attempts] == [
        (1, "SUCCESS")
    ]
    assert run_log.steps["after"].status == "SUCCESS"
    assert RunLogStore(workdir / ".run_log_store").read("lost-worker") == run_log


def count_item_or_sleep(item: int, runs_file: str, pid_file: str) -> int:
    """Each run of an item leaves its line; item 0's first run then sleeps until killed."""
    with open(runs_file, "a", encoding="utf-8") as handle:
        handle.write(f"{item} {os.getpid()}\n")
    if item == 0 and not Path(pid_file).exists():
        Path(pid_file).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(60)
    return item


@pytest.mark.timeout(120)
@pytest.mark.parametrize("batch_size", [None, 10])
def test_a_killed_workers_finished_items_are_not_run_again(
    on_cluster: str, workdir: Path, batch_size: int | None
) -> None:
    """The items a worker finished before it was killed held their results there: Dask
    runs those tasks again on the other worker, where they find their checkpoints. In
    batches, item 0 comes last in its batch: the batch runs again, its other items not."""
    n = 40
    items = [*range(1, n), 0] if batch_size else list(range(n))
    runs_file, pid_file = workdir / "runs.txt", workdir / "pid.txt"
    catalog = RunCatalog(str(workdir / ".catalog"), "lost-items")
    killed: list[int] = []
    errors: list[BaseException] = []

    def kill_when_the_others_are_kept() -> None:
        try:
            deadline = time.monotonic() + 60
            while not pid_file.exists() or len(checkpoint.load_all(catalog)) < n - 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("the items never finished")
                time.sleep(0.05)
            pid = int(pid_file.read_text(encoding="utf-8"))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except BaseException as exc:
            errors.append(exc)

    step = PythonTask(name="count", function=count_item_or_sleep, returns=["y"])
    branch = Pipeline(steps=[step])
    mapped = Map(
        name="m", branch=branch, iterate_on="items", iterate_as="item", batch_size=batch_size
    )
    pipeline = Pipeline(steps=[mapped])
    params = write_params(
        workdir, {"items": items, "runs_file": str(runs_file), "pid_file": str(pid_file)}
    )
    killer = threading.Thread(target=kill_when_the_others_are_kept, daemon=True)
    killer.start()
    run_log = pipeline.execute(
        configuration_file=on_cluster, run_id="lost-items", parameters_file=params
    )
    killer.join(timeout=10)

    assert errors == []
    assert run_log.status == "SUCCESS"
    assert run_log.parameters["y"].value == items
    runs = [line.split() for line in runs_file.read_text(encoding="utf-8").splitlines()]
    ran_on_the_killed_worker = [int(i) for i, pid in runs if int(pid) == killed[0] and i != "0"]
    assert ran_on_the_killed_worker, "the killed worker finished no item: nothing was tested"
    assert Counter(int(i) for i, _ in runs) == {i: 2 if i == 0 else 1 for i in range(n)}
