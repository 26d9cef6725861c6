"""Per-step worker resources (and a timeout) on real processes: a ``dask scheduler`` and
two ``dask worker`` processes, only one started with ``--resources "GPU=1"``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from runnable_dask import ExecutionFailedError, Map, Parallel, Pipeline, PythonTask, Stub
from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStore

from .conftest import DASK, DaskProcesses, start, start_scheduler, stop, wait_for_workers

pytestmark = pytest.mark.cluster


def start_worker(cluster: DaskProcesses, name: str, *options: str) -> None:
    """One ``dask worker`` process of 2 threads, named ``name``."""
    cluster.worker_folder.mkdir(exist_ok=True)
    command = [DASK, "worker", cluster.address, "--host", "127.0.0.1", "--no-dashboard"]
    command += ["--nthreads", "2", "--name", name, *options]
    log = cluster.worker_folder.parent / f"{name}.log"
    cluster.processes.append(start(command, cluster.worker_folder, log))


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    cluster = start_scheduler(tmp_path_factory.mktemp("resources"))
    try:
        start_worker(cluster, "plain")
        start_worker(cluster, "gpu", "--resources", "GPU=1")
        wait_for_workers(cluster, 2)
        yield cluster
    finally:
        stop(cluster.processes)


def worker_names(cluster: DaskProcesses) -> dict[str, str]:
    """Worker address -> name, as the scheduler knows them."""
    with cluster.client() as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    return {address: info["name"] for address, info in workers.items()}


def make_step() -> Callable[..., str]:
    """A step that returns the address of the worker running it and its process id (a
    closure, so the scheduler and workers get it by value: they cannot import tests)."""

    def where(item: object = None) -> str:
        import os

        from distributed import get_worker

        return f"{get_worker().address} {os.getpid()}"

    return where


def run_pipeline(pipeline: Pipeline, cluster: DaskProcesses, folder: Path, run_id: str) -> RunLog:
    config = cluster.config(folder, performance_report=False)
    return pipeline.execute(configuration_file=str(config), run_id=run_id)


def test_annotated_steps_run_only_on_the_worker_that_offers_the_resource(
    gpu_cluster: DaskProcesses, workdir: Path
) -> None:
    on_gpu = anywhere = inside_map = make_step()
    names = worker_names(gpu_cluster)
    pipeline = Pipeline(
        steps=[
            PythonTask(name="train", function=on_gpu, returns=["train_at"], resources={"GPU": 1}),
            Parallel(
                name="both",
                branches={
                    # A Map asks for the GPU for every step inside it.
                    "gpu": Pipeline(
                        steps=[
                            Map(
                                name="fits",
                                branch=Pipeline(
                                    steps=[
                                        PythonTask(name="fit", function=inside_map, returns=["at"])
                                    ]
                                ),
                                iterate_on="items",
                                iterate_as="item",
                                resources={"GPU": 1},
                            )
                        ]
                    ),
                    "cpu": Pipeline(
                        steps=[
                            Map(
                                name="plain_fits",
                                branch=Pipeline(
                                    steps=[
                                        PythonTask(
                                            name="plain_fit",
                                            function=anywhere,
                                            returns=["plain_at"],
                                        )
                                    ]
                                ),
                                iterate_on="items",
                                iterate_as="item",
                            )
                        ]
                    ),
                },
            ),
            Stub(name="done"),
        ]
    )
    (workdir / "params.yaml").write_text("items: [1, 2, 3, 4, 5, 6]\n", encoding="utf-8")

    run_log = pipeline.execute(
        configuration_file=str(gpu_cluster.config(workdir, performance_report=False)),
        run_id="resources-route",
        parameters_file="params.yaml",
    )

    gpu_places = [run_log.parameters["train_at"].value, *run_log.parameters["at"].value]
    assert len(gpu_places) == 7
    assert {names[place.split()[0]] for place in gpu_places} == {"gpu"}
    # Steps without resources go wherever the scheduler sends them: both workers here.
    assert {names[p.split()[0]] for p in run_log.parameters["plain_at"].value} <= {"gpu", "plain"}


def test_a_step_waits_for_a_worker_with_its_resource_and_says_so(
    gpu_cluster: DaskProcesses, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    on_tpu = make_step()
    pipeline = Pipeline(
        steps=[PythonTask(name="tpu_step", function=on_tpu, returns=["at"], resources={"TPU": 2})]
    )
    outcome: dict[str, object] = {}

    def drive() -> None:
        try:
            outcome["run_log"] = run_pipeline(pipeline, gpu_cluster, workdir, "resources-wait")
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()

    def restrictions(dask_scheduler) -> list[tuple[str, dict, str]]:
        return [
            (str(key), dict(ts.resource_restrictions or {}), ts.state)
            for key, ts in dask_scheduler.tasks.items()
            if str(key).startswith("tpu_step-")
        ]

    deadline = time.monotonic() + 60
    waiting: list[tuple[str, dict, str]] = []
    with gpu_cluster.client() as client:
        while not waiting and time.monotonic() < deadline:
            waiting = [t for t in client.run_on_scheduler(restrictions) if t[2] == "no-worker"]
            time.sleep(0.2)
    # The annotation reached the scheduler: the task waits there, restricted to TPU=2.
    assert waiting, "the step never waited in the scheduler for a worker"
    assert waiting[0][1] == {"TPU": 2.0}
    printed = capsys.readouterr().out
    assert "waiting  tpu_step asks for TPU=2, which no worker offers now" in printed
    assert '--resources "TPU=2"' in printed

    start_worker(gpu_cluster, "tpu", "--resources", "TPU=2")
    driver.join(timeout=90)
    assert not driver.is_alive()
    assert "error" not in outcome, outcome.get("error")
    run_log = outcome["run_log"]
    assert isinstance(run_log, RunLog)
    assert run_log.status == "SUCCESS"
    assert worker_names(gpu_cluster)[run_log.parameters["at"].value.split()[0]] == "tpu"


def test_python_step_with_a_timeout_on_a_worker_is_stopped_there(
    gpu_cluster: DaskProcesses, workdir: Path
) -> None:
    """A Dask worker process is daemonic: the step's child interpreter starts anyway, and
    is killed at the limit on the worker."""

    def hang(marks: str) -> None:
        import os
        import time

        with open(marks, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(300)

    def quick() -> int:
        return 7

    marks = workdir / "pids"
    (workdir / "params.yaml").write_text(f"marks: {str(marks)!r}\n", encoding="utf-8")
    pipeline = Pipeline(
        steps=[
            PythonTask(name="quick", function=quick, returns=["seven"], timeout=60),
            PythonTask(name="hang", function=hang, timeout=3, resources={"GPU": 1}),
        ]
    )

    with pytest.raises(ExecutionFailedError, match="timeout of 3 s"):
        pipeline.execute(
            configuration_file=str(gpu_cluster.config(workdir, performance_report=False)),
            run_id="timeout-on-worker",
            parameters_file="params.yaml",
        )

    run_log = RunLogStore(workdir / "run_logs").read("timeout-on-worker")
    assert run_log.step("quick").attempts[-1].output_parameters["seven"].value == 7
    assert run_log.step("hang").status == "FAIL"
    (pid,) = [int(line) for line in marks.read_text(encoding="utf-8").split()]
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
