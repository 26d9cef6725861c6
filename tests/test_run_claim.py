"""One driver per run id, resumes included (issue 17, point 2), with real driver processes.

Drivers are ``python pipe.py`` processes started as a user starts them; the run's lock is
an ``fcntl.flock`` the kernel drops when its process ends, which these tests rely on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runnable_dask.exceptions import RunInUseError
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStore

PIPE = """
import os
import time
from pathlib import Path

from runnable_dask import Pipeline, PythonTask, ShellTask


def flaky():
    Path(f"ran-{os.getpid()}").write_text("")
    time.sleep(float(os.environ.get("NAP", "0")))
    if os.environ.get("MAKE_IT_PASS") != "1":
        raise RuntimeError("not yet")


def main():
    steps = [ShellTask(name="first", command="echo one"), PythonTask(name="flaky", function=flaky)]
    Pipeline(steps=steps).execute(configuration_file="local.yaml")


if __name__ == "__main__":
    main()
"""


@pytest.fixture
def pipe(workdir: Path) -> Path:
    (workdir / "local.yaml").write_text("pipeline-executor:\n  type: local\n")
    path = workdir / "pipe.py"
    path.write_text(PIPE)
    return path


def _driver(pipe: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(pipe)],
        cwd=pipe.parent,
        env={**os.environ, "RUNNABLE_RUN_ID": "rr3", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stored_steps(workdir: Path) -> dict[str, object]:
    """The steps of the run log as a reader sees it (the parts written so far folded in)."""
    try:
        return dict(RunLogStore(workdir / ".run_log_store").read("rr3").steps)
    except (RunLogNotFoundError, ValueError):
        return {}


def _attempts(workdir: Path) -> list[tuple[int, str]]:
    log = json.loads((workdir / ".run_log_store" / "rr3.json").read_text())
    return [(a["attempt_number"], a["status"]) for a in log["steps"]["flaky"]["attempts"]]


@pytest.mark.timeout(120)
def test_of_three_drivers_resuming_one_failed_run_exactly_one_runs(
    pipe: Path, workdir: Path
) -> None:
    first = _driver(pipe)
    assert first.wait() == 1
    drivers = [_driver(pipe, MAKE_IT_PASS="1", NAP="2") for _ in range(3)]
    outputs = [(d.communicate()[0], d.returncode) for d in drivers]
    resumed = [out for out, code in outputs if "Resuming rr3" in out]
    refused = [out for out, code in outputs if "Resuming rr3" not in out]
    assert len(resumed) == 1, outputs
    assert [code for out, code in outputs if "Resuming rr3" in out] == [0]
    for out in refused:
        assert "Traceback" not in out
        assert "RunInUseError: run 'rr3' is being driven by another process (pid " in out
    # The step ran once per driver that got the run: the first run, then the one resume.
    assert len(list(workdir.glob("ran-*"))) == 2
    assert _attempts(workdir) == [(1, "FAIL"), (2, "SUCCESS")]
    assert not (workdir / ".run_log_store" / ".rr3.lock").exists()


@pytest.mark.timeout(120)
def test_a_killed_driver_does_not_hold_its_run(pipe: Path, workdir: Path) -> None:
    """``kill -9`` leaves the run log PROCESSING; the kernel dropped the lock with the
    process, so the run can be resumed at once."""
    killed = _driver(pipe, NAP="60")
    deadline = time.monotonic() + 60
    while "flaky" not in _stored_steps(workdir) and time.monotonic() < deadline:
        time.sleep(0.05)  # the run log shows the step running
    with pytest.raises(RunInUseError, match=r"pid \d+ on"):  # alive: refused
        RunLogStore(workdir / ".run_log_store").lock("rr3")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    stored = json.loads((workdir / ".run_log_store" / "rr3.json").read_text())
    assert stored["status"] == "PROCESSING"
    resumed = _driver(pipe, MAKE_IT_PASS="1")
    out = resumed.communicate()[0]
    assert resumed.returncode == 0, out
    assert "Resuming rr3" in out
    assert _attempts(workdir) == [
        (1, "FAIL"),  # the killed driver's: "stopped while running"
        (2, "SUCCESS"),
    ]


def test_a_run_id_held_in_this_process_is_refused_and_free_once_released(
    workdir: Path,
) -> None:
    store = RunLogStore(workdir / "logs")
    store.lock("one")
    with pytest.raises(RunInUseError, match=rf"pid {os.getpid()} on "):
        RunLogStore(workdir / "logs").lock("one")
    store.release("one")
    other = RunLogStore(workdir / "logs")
    other.lock("one")
    other.release("one")
