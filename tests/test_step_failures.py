"""A step's failure is the step's, wherever it happens (issue 17, point 3).

What goes wrong around a step's own code (a pickled return that cannot be pickled, text
that cannot be encoded, an error of the task Dask reports) is recorded on that step,
siblings keep their records, and the console shows no Dask traceback. Each case runs as
a user runs it (``python pipeline.py``) on both executors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PIPELINE = """
import sys
import threading
from runnable_dask import Parallel, Pipeline, PythonTask, Stub, pickled

def lock():
    return threading.Lock()

def odd_text():
    print("before \\ud800 after")
    return 1

def fine():
    print("fine")
    return 2

def main():
    case = sys.argv[1]
    bad = {
        "lock": PythonTask(name="bad", function=lock, returns=[pickled("held")]),
        "text": PythonTask(name="bad", function=odd_text, returns=["odd"]),
    }[case]
    Pipeline(steps=[Parallel(name="par", branches={
        "good": Pipeline(steps=[PythonTask(name="ok", function=fine, returns=["y"])]),
        "bad": Pipeline(steps=[Stub(name="wait"), bad]),
    })]).execute(configuration_file=sys.argv[2])

if __name__ == "__main__":
    main()
"""

EXECUTORS = {
    "local": {"type": "local"},
    "dask": {
        "type": "dask",
        "config": {
            "n_workers": 2,
            "dashboard_address": "127.0.0.1:0",
            "performance_report": False,
        },
    },
}


def run_script(folder: Path, case: str, executor: str) -> tuple[int, str, dict[str, Any]]:
    (folder / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    config = folder / "config.yaml"
    config.write_text(json.dumps({"pipeline-executor": EXECUTORS[executor]}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "pipeline.py", case, str(config)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    (log_file,) = (folder / ".run_log_store").glob("*.json")
    return done.returncode, done.stdout + done.stderr, json.loads(log_file.read_text())


def branch_steps(run_log: dict[str, Any], branch: str) -> dict[str, Any]:
    return run_log["steps"]["par"]["branches"][f"par.{branch}"]["steps"]


EXECUTOR_PARAMS = [
    pytest.param("local"),
    pytest.param("dask", marks=pytest.mark.cluster),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("executor", EXECUTOR_PARAMS)
def test_an_unpicklable_return_fails_its_step_and_keeps_the_sibling(
    workdir: Path, executor: str
) -> None:
    status, output, run_log = run_script(workdir, "lock", executor)
    assert status == 1
    bad = branch_steps(run_log, "bad")["par.bad.bad"]
    assert bad["status"] == "FAIL"
    assert "returned value 'held' (lock) cannot be pickled" in bad["message"]
    assert branch_steps(run_log, "good")["par.good.ok"]["status"] == "SUCCESS"
    assert run_log["status"] == "FAIL"
    assert run_log["steps"]["par"]["status"] == "FAIL"
    assert "Compute Failed" not in output
    assert "Traceback" not in output
    assert "failed par.bad.bad: UnpicklableReturnError" in output


@pytest.mark.timeout(300)
@pytest.mark.parametrize("executor", EXECUTOR_PARAMS)
def test_text_that_cannot_be_encoded_is_logged_escaped(workdir: Path, executor: str) -> None:
    status, output, run_log = run_script(workdir, "text", executor)
    assert status == 0, output
    assert run_log["status"] == "SUCCESS"
    assert branch_steps(run_log, "bad")["par.bad.bad"]["status"] == "SUCCESS"
    (log,) = workdir.glob(".catalog/*/logs/par.bad.bad.execution.log")
    assert log.read_bytes() == b"before \\ud800 after\n"
    assert "Traceback" not in output


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_the_dask_executor_blames_the_task_that_raised(workdir: Path) -> None:
    """Dask tells the client only that the watched key erred; the executor asks the
    scheduler which task raised, so the driver can name its step."""
    import queue

    from runnable_dask.config import DaskConfig
    from runnable_dask.executors.dask import DaskExecutor

    config = DaskConfig(n_workers=1, dashboard_address="127.0.0.1:0", processes=True)
    events: queue.SimpleQueue = queue.SimpleQueue()
    with DaskExecutor(config, events, frozenset()) as executor:
        tasks = {"first-1": (_explode,), "second-1": (_echo, "first-1")}
        deps = {"first-1": (), "second-1": ("first-1",)}
        executor.submit(tasks, deps, keep=set(), watch={"second-1"}, spans={})
        resolved = events.get(timeout=60)
        with pytest.raises(RuntimeError, match="boom"):
            resolved.outcome()
        assert executor.blamed("second-1") == "first-1"


def _explode() -> None:
    raise RuntimeError("boom")


def _echo(value: Any) -> Any:
    return value
