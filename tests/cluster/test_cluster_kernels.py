"""Warm kernels on a cluster that outlives runs (``dask scheduler`` and ``dask worker``
processes started by hand): ready from one run to the next, and a notebook's kernel
ended when its run is interrupted, while the worker goes on.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import nbformat
import psutil
import pytest

from runnable_dask import NotebookTask, Pipeline

from .conftest import DaskProcesses, start_scheduler, start_workers, stop, wait_for_workers

pytestmark = pytest.mark.cluster

AGE = """\
import os, time
with open("/proc/uptime") as _f:
    _up = float(_f.read().split()[0])
with open("/proc/self/stat") as _f:
    _ticks = int(_f.read().rsplit(")", 1)[1].split()[19])
kernel_age = _up - _ticks / os.sysconf("SC_CLK_TCK")
first_cell_at = time.time()
kernel_pid = os.getpid()
"""
LONG = """\
import os, subprocess, time
child = subprocess.Popen(["sleep", "120"])
with open(@PIDS@ + ".tmp", "w") as handle:
    handle.write(f"{os.getpid()} {child.pid}")
os.replace(@PIDS@ + ".tmp", @PIDS@)
time.sleep(120)
"""
DRIVER = """
from runnable_dask import NotebookTask, Pipeline

if __name__ == "__main__":
    Pipeline(steps=[NotebookTask(name="long", notebook="long.ipynb")]).execute(
        configuration_file=@CONFIG@, run_id="interrupted"
    )
"""


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    """A scheduler and one worker process: every notebook runs on the same worker."""
    cluster = start_scheduler(tmp_path_factory.mktemp("kernels"))
    try:
        start_workers(cluster, 1)
        wait_for_workers(cluster, 1)
        yield cluster
    finally:
        with contextlib.suppress(Exception), cluster.client() as client:
            client.shutdown()  # workers close (their kernels with them), as a user stops them
        for process in cluster.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        stop(cluster.processes)


def write_notebook(path: Path, source: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(notebook, str(path))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.timeout(180)
def test_a_standing_cluster_keeps_a_kernel_ready_for_the_next_run(
    one_worker: DaskProcesses, workdir: Path
) -> None:
    write_notebook(workdir / "age.ipynb", AGE)
    config = one_worker.config(workdir, performance_report=False)
    pipeline = Pipeline(
        steps=[
            NotebookTask(
                name="age",
                notebook="age.ipynb",
                returns=["kernel_age", "first_cell_at", "kernel_pid"],
            )
        ]
    )
    pipeline.execute(configuration_file=str(config), run_id="first")
    time.sleep(2)  # the worker readies the next kernel between runs
    second = pipeline.execute(configuration_file=str(config), run_id="second")

    attempt = second.steps["age"].attempts[0]
    values = {name: p.value for name, p in attempt.output_parameters.items()}
    since_start = values["first_cell_at"] - datetime.fromisoformat(attempt.start_time).timestamp()
    assert values["kernel_age"] > since_start, "the second run's notebook waited for a kernel"
    assert values["kernel_age"] > 1.0
    assert not alive(values["kernel_pid"]), "a kernel is used once, then shut down"


@pytest.mark.timeout(180)
def test_an_interrupted_runs_kernel_ends_while_the_worker_goes_on(
    one_worker: DaskProcesses, workdir: Path
) -> None:
    pids = workdir / "pids.txt"
    write_notebook(workdir / "long.ipynb", LONG.replace("@PIDS@", repr(str(pids))))
    config = one_worker.config(workdir, performance_report=False)
    (workdir / "driver.py").write_text(DRIVER.replace("@CONFIG@", repr(str(config))))
    driver = subprocess.Popen(
        [sys.executable, "driver.py"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not pids.exists():
            assert driver.poll() is None, driver.communicate()[0]
            assert time.monotonic() < deadline, "the notebook step never started"
            time.sleep(0.1)
        kernel, child = (int(pid) for pid in pids.read_text().split())
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert "Interrupted: run " in output  # said once, after the summary
    assert "Traceback" not in output

    deadline = time.monotonic() + 15  # the scheduler tells the worker the task is dropped
    while (alive(kernel) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(kernel), "the cancelled notebook's kernel still runs"
    assert not alive(child), "a process the cancelled notebook started still runs"
    assert all(p.poll() is None for p in one_worker.processes), "the cluster went on"
