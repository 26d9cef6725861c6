"""Notebook steps on warm kernels, through ``execute()``: real papermill, real kernels.

A kernel that was ready before its step started is told apart by its age: each notebook
reports how long its kernel process had existed when its first cell ran, against the
time since its step started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest

from runnable_dask import NotebookTask, Pipeline, PythonTask
from runnable_dask.stores.runlog import RunLog

KERNEL_FACTS = """\
import os, time
import psutil
with open("/proc/uptime") as _f:
    _up = float(_f.read().split()[0])
with open("/proc/self/stat") as _f:
    _ticks = int(_f.read().rsplit(")", 1)[1].split()[19])
kernel_age = _up - _ticks / os.sysconf("SC_CLK_TCK")  # seconds since the kernel started
first_cell_at = time.time()
kernel_pid = os.getpid()
cwd = os.getcwd()
run_id = os.environ.get("RUNNABLE_RUN_ID")
kernels_here = []
for _p in psutil.Process().parent().children():  # this kernel and its siblings
    try:
        if "ipykernel_launcher" in " ".join(_p.cmdline()):
            kernels_here.append(_p.pid)
    except psutil.Error:  # one that has just ended
        pass
"""
FACTS = ["kernel_age", "first_cell_at", "kernel_pid", "cwd", "run_id", "kernels_here"]


def write_notebook(path: Path, *cells: str) -> str:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(notebook, str(path))
    return path.name


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def prepare_data() -> None:
    time.sleep(1.5)  # the time a worker needs to have a kernel ready


def two_notebooks(workdir: Path) -> Pipeline:
    """``define`` sets a variable; ``look`` checks whether it can see it."""
    define = write_notebook(
        workdir / "define.ipynb",
        KERNEL_FACTS,
        "private_value = 42\ntime.sleep(0.5)",  # the next kernel starts meanwhile
    )
    look = write_notebook(
        workdir / "look.ipynb", KERNEL_FACTS, "leaked = 'private_value' in globals()"
    )
    return Pipeline(
        steps=[
            PythonTask(name="prepare", function=prepare_data),
            NotebookTask(name="define", notebook=define, returns=FACTS),
            NotebookTask(name="look", notebook=look, returns=[*FACTS, "leaked"]),
        ]
    )


def facts(run_log: RunLog, step: str) -> dict[str, Any]:
    """What the step's notebook returned, and whether its kernel predates the step."""
    attempt = run_log.steps[step].attempts[0]
    values = {name: p.value for name, p in attempt.output_parameters.items()}
    since_start = values["first_cell_at"] - datetime.fromisoformat(attempt.start_time).timestamp()
    values["warm"] = values["kernel_age"] > since_start
    return values


def check_two_notebooks(run_log: RunLog, workdir: Path) -> list[int]:
    """The assertions both executors share; the kernel pids seen during the run."""
    define, look = facts(run_log, "define"), facts(run_log, "look")
    assert look["leaked"] is False, "the second notebook saw the first one's variable"
    assert define["kernel_pid"] != look["kernel_pid"]
    assert define["warm"], "the first notebook waited for a kernel to start"
    assert look["warm"], "the second notebook waited for a kernel to start"
    for seen in (define, look):  # what a kernel started for the step would have had
        assert Path(seen["cwd"]).resolve() == workdir.resolve()
        assert seen["run_id"] == run_log.run_id
    return [define["kernel_pid"], look["kernel_pid"], *look["kernels_here"]]


@pytest.mark.timeout(180)
def test_local_notebooks_take_warm_kernels_and_share_nothing(run: Any, workdir: Path) -> None:
    run_log = run(two_notebooks(workdir))

    kernels = check_two_notebooks(run_log, workdir)
    assert len(set(kernels)) >= 3, "the next kernel was ready beside the running one"
    left = [pid for pid in kernels if alive(pid)]
    assert not left, f"kernel processes {left} outlived execute()"


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_dask_notebooks_take_warm_kernels_and_none_outlives_the_cluster(workdir: Path) -> None:
    config = workdir / "dask.yaml"
    config.write_text(
        "pipeline-executor:\n  type: dask\n  config:\n    n_workers: 1\n"
        "    threads_per_worker: 2\n    dashboard_address: 127.0.0.1:0\n"
        "    performance_report: false\n",
        encoding="utf-8",
    )
    run_log = two_notebooks(workdir).execute(configuration_file=str(config), run_id="on-dask")

    kernels = check_two_notebooks(run_log, workdir)
    assert len(set(kernels)) >= 3, "the next kernel was ready beside the running one"
    left = [pid for pid in kernels if alive(pid)]
    assert not left, f"kernel processes {left} outlived the run's cluster"


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_the_runs_own_workers_ready_its_first_notebooks_kernel_as_they_start(
    workdir: Path,
) -> None:
    # No step before the notebooks: the kernel the first one takes was started by its
    # worker while the cluster started, before the run could ask for it.
    config = workdir / "dask.yaml"
    config.write_text(
        "pipeline-executor:\n  type: dask\n  config:\n    n_workers: 1\n"
        "    dashboard_address: 127.0.0.1:0\n    performance_report: false\n",
        encoding="utf-8",
    )
    pipeline = Pipeline(steps=two_notebooks(workdir).steps[1:])
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    run_log = pipeline.execute(configuration_file=str(config), run_id="first-notebook")

    define, look = facts(run_log, "define"), facts(run_log, "look")
    assert define["warm"], f"the first notebook waited for a kernel to start {define}"
    assert look["leaked"] is False, "the second notebook saw the first one's variable"
    assert define["kernel_pid"] != look["kernel_pid"]
    assert define["run_id"] == run_log.run_id  # given the run's environment when taken
    left = [
        " ".join(p.cmdline())
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, f"{left} outlived execute()"


INTERRUPTED = """
from runnable_dask import NotebookTask, Pipeline

if __name__ == "__main__":
    Pipeline(steps=[NotebookTask(name="long", notebook="long.ipynb")]).execute(
        configuration_file="config.yaml", run_id="interrupted"
    )
"""
LONG_NOTEBOOK = """\
import os, subprocess, time
child = subprocess.Popen(["sleep", "120"])
with open("pids.tmp", "w") as handle:
    handle.write(f"{os.getpid()} {child.pid} {os.getppid()}")
os.replace("pids.tmp", "pids.txt")
time.sleep(120)
"""
CONFIGS = {
    "local": "pipeline-executor:\n  type: local\n",
    "dask": "pipeline-executor:\n  type: dask\n  config:\n    n_workers: 1\n"
    "    dashboard_address: 127.0.0.1:0\n    performance_report: false\n",
}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("executor", ["local", pytest.param("dask", marks=pytest.mark.cluster)])
def test_an_interrupted_run_ends_its_notebooks_kernel(workdir: Path, executor: str) -> None:
    (workdir / "interrupted.py").write_text(INTERRUPTED, encoding="utf-8")
    (workdir / "config.yaml").write_text(CONFIGS[executor], encoding="utf-8")
    write_notebook(workdir / "long.ipynb", LONG_NOTEBOOK)
    driver = subprocess.Popen(
        [sys.executable, "interrupted.py"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a failed test can kill what it started
    )
    pids_file = workdir / "pids.txt"
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists():  # the notebook runs, and has started its child
            assert driver.poll() is None, driver.communicate()[0]
            assert time.monotonic() < deadline, "the notebook step never started"
            time.sleep(0.1)
        kernel, child, runner = (int(pid) for pid in pids_file.read_text().split())
        assert alive(kernel) and alive(child)

        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode != 0
    assert "Interrupted: run " in output  # said once, after the summary
    assert "Traceback" not in output
    left = [pid for pid in (kernel, child) if alive(pid)]
    assert not left, f"{left} outlived the interrupted driver ({executor})"
    # The private copy of the notebook, the kernel's sockets: in the folder of the process
    # that ran the step (the driver, or a worker), removed with it.
    scratch = Path(tempfile.gettempdir()) / f"runnable-dask-kernels-{runner}"
    assert not scratch.exists(), f"{scratch} is left behind"


@pytest.mark.timeout(120)
def test_a_step_that_names_its_kernel_manager_gets_a_kernel_of_its_own(
    run: Any, workdir: Path
) -> None:
    notebook = write_notebook(
        workdir / "own.ipynb",
        "import os, psutil\n"
        "command = ' '.join(psutil.Process().cmdline())\n"
        "kernel_pid = os.getpid()",
    )
    own = {"kernel_manager_class": "jupyter_client.manager.AsyncKernelManager"}
    task = NotebookTask(
        name="own", notebook=notebook, returns=["command", "kernel_pid"], optional_ploomber_args=own
    )
    run_log = run(Pipeline(steps=[task]))
    seen = {name: p.value for name, p in run_log.steps["own"].attempts[0].output_parameters.items()}
    assert "ipykernel_launcher" in seen["command"]
    assert "runnable-dask-kernels-" not in seen["command"], "papermill started it, not the pool"
    assert not alive(seen["kernel_pid"])


def worker_plugins() -> list[str]:
    from distributed import get_worker

    return sorted(get_worker().plugins)


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_the_runs_own_workers_keep_their_preloaded_kernels_without_a_plugin(
    workdir: Path,
) -> None:
    # Registering the plugin waits for every worker; the preload already did its work.
    config = workdir / "dask.yaml"
    config.write_text(CONFIGS["dask"], encoding="utf-8")
    notebook = write_notebook(workdir / "one.ipynb", KERNEL_FACTS)
    pipeline = Pipeline(
        steps=[
            NotebookTask(name="one", notebook=notebook, returns=FACTS),
            PythonTask(name="plugins", function=worker_plugins, returns=["plugins"]),
        ]
    )
    run_log = pipeline.execute(configuration_file=str(config), run_id="no-plugin")

    assert facts(run_log, "one")["warm"], "the notebook waited for a kernel to start"
    plugins = run_log.steps["plugins"].attempts[0].output_parameters["plugins"].value
    assert not [name for name in plugins if name.startswith("runnable-dask-kernels-")]
