"""A task's ``timeout``: each kind of step is stopped at its limit, retried, never a
success, and leaves no process behind (checked with psutil)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import psutil
import pytest

from runnable_dask import (
    ExecutionFailedError,
    NotebookTask,
    Pipeline,
    PipelineDefinitionError,
    PythonTask,
    ShellTask,
    pickled,
)
from runnable_dask.stores.runlog import RunLog

LIMIT = "timeout of {} s and was stopped"


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text(encoding="utf-8").split()]


def gone(pids: list[int], wait: float = 5.0) -> list[int]:
    """The pids still alive (not zombies) after at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        alive = [
            pid
            for pid in pids
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def assert_timed_out_twice(run_log: RunLog, name: str, seconds: float) -> None:
    step = run_log.step(name)
    assert step.status == "FAIL"
    assert [a.attempt_number for a in step.attempts] == [1, 2]
    for attempt in step.attempts:
        assert attempt.status == "FAIL"
        assert attempt.message.startswith("StepTimeoutError: the attempt ran longer")
        assert LIMIT.format(f"{seconds:g}") in attempt.message
    assert run_log.status == "FAIL"


def run_failing(run, pipeline: Pipeline, stored_run_log) -> RunLog:
    with pytest.raises(ExecutionFailedError, match="timeout of"):
        run(pipeline)
    return stored_run_log()


@pytest.mark.timeout(120)
def test_python_step_is_stopped_at_its_limit_and_retried(
    run, stored_run_log, workdir: Path
) -> None:
    marks = workdir / "python.pids"

    def hang() -> None:
        import os
        import subprocess

        child = subprocess.Popen(["sleep", "300"])
        with open(marks, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n{child.pid}\n")
        print("started, now hanging", flush=True)
        time.sleep(300)

    pipeline = Pipeline(steps=[PythonTask(name="hang", function=hang, timeout=3, retries=1)])
    began = time.monotonic()
    run_log = run_failing(run, pipeline, stored_run_log)

    assert time.monotonic() - began < 100  # stopped, not waited for (a hang guard)
    assert_timed_out_twice(run_log, "hang", 3)
    pids = pids_in(marks)
    assert len(pids) == 4  # two attempts, each a step process and the sleep it started
    assert gone(pids) == []
    log = (workdir / ".catalog" / "test-run" / "logs" / "hang.execution.log").read_text()
    assert "started, now hanging" in log


@pytest.mark.timeout(120)
def test_shell_step_is_stopped_at_its_limit_with_what_it_started(
    run, stored_run_log, workdir: Path
) -> None:
    marks = workdir / "shell.pids"
    command = f'echo $$ >> {marks}; sleep 300 & echo $! >> {marks}; echo "waiting"; wait'
    pipeline = Pipeline(steps=[ShellTask(name="hang", command=command, timeout=2, retries=1)])

    run_log = run_failing(run, pipeline, stored_run_log)

    assert_timed_out_twice(run_log, "hang", 2)
    pids = pids_in(marks)
    assert len(pids) == 4
    assert gone(pids) == []
    log = (workdir / ".catalog" / "test-run" / "logs" / "hang.execution.log").read_text()
    assert "waiting" in log


@pytest.mark.timeout(180)
def test_notebook_step_is_stopped_and_its_kernel_killed(run, stored_run_log, workdir: Path) -> None:
    marks = workdir / "notebook.pids"
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import os, subprocess, time\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            f"with open({str(marks)!r}, 'a') as handle:\n"
            "    handle.write(f'{os.getpid()}\\n{child.pid}\\n')"
        ),
        nbformat.v4.new_code_cell("time.sleep(300)"),
    ]
    nbformat.write(notebook, str(workdir / "hang.ipynb"))
    pipeline = Pipeline(
        steps=[NotebookTask(name="hang", notebook="hang.ipynb", timeout=10, retries=1)]
    )

    run_log = run_failing(run, pipeline, stored_run_log)

    assert_timed_out_twice(run_log, "hang", 10)
    pids = pids_in(marks)
    assert len(pids) == 4  # each attempt's kernel and the process it started
    assert gone(pids) == []


def test_python_step_within_its_limit_returns_objects_and_prints_to_its_log(
    run, workdir: Path
) -> None:
    def fit(alpha: float) -> tuple[dict, float]:
        import os

        print(f"fitting in {os.getpid()}")
        return {"alpha": alpha, "pid": os.getpid()}, alpha * 2

    def use(model: dict, score: float) -> float:
        return model["alpha"] + score

    pipeline = Pipeline(
        steps=[
            PythonTask(name="fit", function=fit, returns=[pickled("model"), "score"], timeout=60),
            PythonTask(name="use", function=use, returns=["total"]),
        ]
    )
    (workdir / "params.yaml").write_text("alpha: 0.5\n", encoding="utf-8")

    run_log = run(pipeline, parameters_file="params.yaml")

    assert run_log.status == "SUCCESS"
    assert run_log.parameters["total"].value == 1.5
    log = (workdir / ".catalog" / "test-run" / "logs" / "fit.execution.log").read_text()
    pid = int(log.split()[-1])
    assert pid != psutil.Process().pid  # it ran in a child process
    assert gone([pid]) == []


def test_python_step_error_in_its_child_is_reported_as_raised(
    run, stored_run_log, workdir: Path
) -> None:
    def broken() -> None:
        raise ValueError("the grid is empty")

    pipeline = Pipeline(steps=[PythonTask(name="broken", function=broken, timeout=60)])

    with pytest.raises(ExecutionFailedError, match="ValueError: the grid is empty"):
        run(pipeline)

    step = stored_run_log().step("broken")
    assert step.attempts[0].message == "ValueError: the grid is empty"
    log = (workdir / ".catalog" / "test-run" / "logs" / "broken.execution.log").read_text()
    assert ", in broken\nValueError: the grid is empty" in log  # the child's own traceback


@pytest.mark.parametrize("timeout", [0, -5, "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(timeout: object) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"ShellTask 'wait': timeout: "):
        ShellTask(name="wait", command="sleep 1", timeout=timeout)
