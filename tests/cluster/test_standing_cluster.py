"""``runnable-dask cluster start | status | stop`` and where a run gets its cluster.

Real processes throughout: the cluster is started and stopped with the command a user
types, each in a state file of the test's own (``RUNNABLE_DASK_CLUSTER_FILE``); a second,
hand-started scheduler (``tcp_cluster``) tells the sources apart; what is killed is
killed with SIGKILL, by pid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from runnable_dask import Pipeline, PythonTask
from runnable_dask.exceptions import RunnableDaskError
from runnable_dask.executors import standing

from .conftest import DaskProcesses, start_scheduler, stop

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

RUNNABLE_DASK = str(Path(sys.executable).with_name("runnable-dask"))


def cli(state_file: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, standing.STATE_ENV: str(state_file)}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    done = subprocess.run(
        [RUNNABLE_DASK, "cluster", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def start_cluster(state_file: Path) -> standing.ClusterState:
    cli(
        state_file,
        "start",
        "--workers",
        "1",
        "--threads",
        "2",
        "--dashboard-address",
        "127.0.0.1:0",
    )
    state = standing.read(state_file)
    assert state is not None
    return state


def end(state_file: Path, state: standing.ClusterState | None) -> None:
    """Whatever the test did, nothing of the cluster is left after it."""
    cli(state_file, "stop", check=False)
    if state is not None:
        standing.end_processes(state, grace=0)


def alive(processes: list[psutil.Process]) -> list[int]:
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, standing.ClusterState]]:
    """A runnable-dask cluster of one worker process of 2 threads, for the module."""
    state_file = tmp_path_factory.mktemp("standing") / "cluster.json"
    state = None
    try:
        state = start_cluster(state_file)
        yield state_file, state
    finally:
        end(state_file, state)


@pytest.fixture
def uses(
    running: tuple[Path, standing.ClusterState], monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> standing.ClusterState:
    """Runs in this test find the module's cluster, and no DASK_SCHEDULER_ADDRESS."""
    monkeypatch.setenv(standing.STATE_ENV, str(running[0]))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    return running[1]


STEPS = """
import os


def whose_pid():
    return os.getpid()
"""


def where_pipeline(folder: Path) -> Pipeline:
    """A step that returns the id of the process it runs in, from a module of the project
    (``folder``): workers of a cluster started elsewhere get it by value, as a user's."""
    path = folder / "standing_steps.py"
    path.write_text(STEPS, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("standing_steps", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["standing_steps"] = module
    return Pipeline(steps=[PythonTask(name="where", function=module.whose_pid, returns=["pid"])])


def run(folder: Path, **executor: object) -> None:
    """Run a one-step pipeline (its step returns its process id); the console's output."""
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "pipeline-executor": {
                    "type": "dask",
                    "config": {"performance_report": False, **executor},
                }
            }
        ),
        encoding="utf-8",
    )
    where_pipeline(folder).execute(configuration_file=str(config))


def first_line(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    out = capsys.readouterr().out
    return out.splitlines()[0], out


# --- the command -----------------------------------------------------------------------


def test_start_prints_where_and_status_shows_each_worker(
    running: tuple[Path, standing.ClusterState],
) -> None:
    state_file, state = running
    assert state.address.startswith("tcp://127.0.0.1:")
    assert state.dashboard and state.dashboard.startswith("http://127.0.0.1:")
    shown = cli(state_file, "status").stdout
    assert f"Scheduler: {state.address}" in shown
    assert f"Dashboard: {state.dashboard}" in shown
    # one row per worker: its name, address, threads, memory, tasks
    assert re.search(r"│ worker\S* +│ tcp://127\.0\.0\.1:\d+ +│ +2 │ .+ / .+ │ +0 │ +0 │", shown)


def test_start_refuses_a_second_cluster(running: tuple[Path, standing.ClusterState]) -> None:
    state_file, state = running
    done = cli(state_file, "start", check=False)
    assert done.returncode == 1
    assert f"already running at {state.address}" in done.stderr


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    state_file = tmp_path / "cluster.json"
    state = None
    try:
        state = start_cluster(state_file)
        started = standing.processes(state)
        assert len(started) >= 3  # scheduler, worker launcher (nanny), worker
        out = cli(state_file, "stop").stdout
        assert f"Stopped the runnable-dask cluster at {state.address}" in out
        assert alive(started) == []
        assert not state_file.exists()
        assert "No runnable-dask cluster runs" in cli(state_file, "status").stdout
    finally:
        end(state_file, state)


def test_a_killed_scheduler_is_detected_and_the_next_run_says_so(
    tmp_path: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_file = tmp_path / "cluster.json"
    state = None
    try:
        state = start_cluster(state_file)
        workers = [p for p in standing.processes(state) if p.pid != state.scheduler.pid]
        os.kill(state.scheduler.pid, signal.SIGKILL)
        monkeypatch.setenv(standing.STATE_ENV, str(state_file))
        run(workdir)  # the run falls back to a cluster of its own, and says why
        line, out = first_line(capsys)
        assert "LocalCluster" in line and "started for this run" in line
        assert f"the runnable-dask cluster at {state.address} is gone" in out
        assert f"scheduler, pid {state.scheduler.pid}, is no longer running" in out
        assert not state_file.exists()
        assert alive(workers) == []  # its leftover workers were ended too
    finally:
        end(state_file, state)


# --- where a run gets its cluster, in order ----------------------------------------------


def test_a_running_cluster_serves_runs_that_name_none(
    uses: standing.ClusterState, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_log = where_pipeline(workdir).execute()
    line, _ = first_line(capsys)
    assert f"on runnable-dask cluster {uses.address} (1 workers x 2 threads)" in line
    ran_in = run_log.parameters["pid"].value
    assert ran_in in {p.pid for p in standing.processes(uses)}


def test_dask_scheduler_address_wins_over_a_running_cluster(
    uses: standing.ClusterState,
    tcp_cluster: DaskProcesses,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", tcp_cluster.address)
    run(workdir)
    line, _ = first_line(capsys)
    assert (
        f"on Dask scheduler {tcp_cluster.address} (2 workers), from DASK_SCHEDULER_ADDRESS" in line
    )


def test_this_processes_dask_client_wins_over_the_environment_and_is_left_open(
    uses: standing.ClusterState,
    tcp_cluster: DaskProcesses,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A notebook's ``client = Client(...)``: runs that name no cluster use it, as
    ``dask.compute`` would, and leave it open with nothing of theirs held."""
    from distributed import Client

    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", uses.address)
    with Client(tcp_cluster.address, timeout=10) as client:  # the default client
        workers = set(client.run(os.getpid).values())
        run_log = where_pipeline(workdir).execute()
        line, _ = first_line(capsys)
        assert (
            f"on Dask scheduler {tcp_cluster.address} (2 workers), from this process's Dask "
            "client" in line
        )
        assert run_log.parameters["pid"].value in workers
        assert client.status == "running"
        assert client.submit(sum, [1, 2]).result() == 3
        unwanted = lambda dask_scheduler: [  # noqa: E731  (by value, to the scheduler)
            key for key, ts in dask_scheduler.tasks.items() if not ts.who_wants
        ]
        deadline = time.monotonic() + 10
        while (left := client.run_on_scheduler(unwanted)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == []  # the run's results were let go


def test_a_client_whose_scheduler_is_gone_is_passed_over_and_said(
    uses: standing.ClusterState,
    tmp_path: Path,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from distributed import Client

    lost = start_scheduler(tmp_path)
    try:
        with Client(lost.address, timeout=60) as client:  # reconnecting for 60 s
            os.kill(lost.processes[0].pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while client.status == "running" and time.monotonic() < deadline:
                time.sleep(0.05)
            run(workdir)
            line, out = first_line(capsys)
            assert f"on runnable-dask cluster {uses.address}" in line
            assert (
                f"note     this process's Dask client ({lost.address}) is connecting, not "
                "running: the run does not use it" in out
            )
    finally:
        stop(lost.processes)


def test_the_configurations_address_wins_over_this_processes_client(
    uses: standing.ClusterState,
    tcp_cluster: DaskProcesses,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from distributed import Client

    with Client(tcp_cluster.address, timeout=10):
        run(workdir, address=uses.address)
    line, _ = first_line(capsys)
    assert f"on Dask scheduler {uses.address}" in line
    assert "from the configuration's address" in line


def test_an_unreachable_dask_scheduler_address_fails_the_run_naming_it(
    uses: standing.ClusterState, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    with pytest.raises(RunnableDaskError, match="named by DASK_SCHEDULER_ADDRESS"):
        run(workdir, timeout=2)


def test_the_configurations_address_wins_over_both(
    uses: standing.ClusterState,
    tcp_cluster: DaskProcesses,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", uses.address)
    run(workdir, address=tcp_cluster.address)
    line, _ = first_line(capsys)
    assert f"on Dask scheduler {tcp_cluster.address}" in line
    assert "from the configuration's address" in line


def test_the_configurations_cluster_class_wins_over_both(
    uses: standing.ClusterState,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", uses.address)
    run(
        workdir,
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": "127.0.0.1:0"},
    )
    line, _ = first_line(capsys)
    assert (
        "on LocalCluster (workers as cluster_kwargs say), from the configuration's cluster_class"
        in line
    )


def test_sizing_the_runs_own_cluster_wins_over_a_running_one(
    uses: standing.ClusterState, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(workdir, n_workers=1, dashboard_address="127.0.0.1:0")
    line, _ = first_line(capsys)
    assert "on LocalCluster (1 worker processes x 4 threads, TLS), started for this run" in line


def test_a_runnable_dask_cluster_serves_the_pipeline_page(
    uses: standing.ClusterState, workdir: Path
) -> None:
    """The dashboard of a cluster started by ``runnable-dask cluster start`` has the
    Pipeline page: its JSON lists a run made on it, with the run's step."""
    run(workdir)
    base = str(uses.dashboard).removesuffix("/status")
    with urllib.request.urlopen(f"{base}/runnable-dask/runs", timeout=30) as answer:
        runs = json.loads(answer.read())["runs"]
    assert runs, "the page saw no run"
    with urllib.request.urlopen(
        f"{base}/runnable-dask/runs/{runs[0]['run_id']}", timeout=30
    ) as answer:
        assert '"where"' in answer.read().decode()
