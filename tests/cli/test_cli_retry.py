"""``runnable-dask retry``: refusals, and launching a failed run again as it was launched.

A full retry needs the driver to record ``run_config["launch"]`` and to resume a failed
run given its id; until it does, the end-to-end tests are expected to fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runnable_dask.stores.runlog import RunLog
from runnable_dask.stores.runlog_store import RunLogStore

Invoke = Callable[..., Result]


def test_retry_refuses_an_unknown_run(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    write_run_log("known", {}, status="FAIL")
    result = invoke("retry", "unknown")
    assert result.exit_code == 2
    assert "no run 'unknown' in .run_log_store; recent runs: known" in result.stderr


def test_retry_refuses_a_run_that_succeeded(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    write_run_log("done", {}, status="SUCCESS", run_config={"launch": {"entry": "x.py"}})
    result = invoke("retry", "done")
    assert result.exit_code == 2
    assert "run 'done' succeeded already" in result.stderr


def test_retry_refuses_a_run_without_a_launch_record(
    invoke: Invoke, workdir: Path, write_run_log: Callable[..., RunLog]
) -> None:
    write_run_log("notebook-run", {}, status="FAIL")
    result = invoke("retry", "notebook-run")
    assert result.exit_code == 2
    assert "run 'notebook-run' has no launch record" in result.stderr


def test_retry_launches_the_recorded_entry_in_its_folder_under_the_same_id(
    invoke: Invoke,
    flow: Path,
    local_config: Path,
    workdir: Path,
    write_run_log: Callable[..., RunLog],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the CLI does itself: where it goes, what it calls, with which settings."""
    launch = {
        "entry": f"{flow}:spy",
        "cwd": str(workdir),
        "configuration_file": str(local_config),
        "parameters_file": "",
    }
    write_run_log("earlier", {}, status="FAIL", run_config={"launch": launch})
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("retry", "earlier", "--log-folder", str(workdir / ".run_log_store"))
    assert f"Retrying run earlier ({flow}:spy) in {workdir}" in result.stdout
    seen = json.loads((workdir / "seen.json").read_text(encoding="utf-8"))
    assert seen["cwd"] == str(workdir)
    assert seen["RUNNABLE_RUN_ID"] == "earlier"
    assert seen["RUNNABLE_CONFIGURATION_FILE"] == str(local_config)
    assert seen["RUNNABLE_DASK_ENTRY"] == f"{flow}:spy"


@pytest.mark.parametrize("target", ["flow.py:retryable", "flow.py"])
def test_a_failed_run_succeeds_when_retried_after_the_fix(
    invoke: Invoke, flow: Path, local_config: Path, workdir: Path, store: RunLogStore, target: str
) -> None:
    if target == "flow.py":  # main() runs the retryable pipeline
        flow.write_text(
            flow.read_text(encoding="utf-8") + "\n\ndef main():\n    retryable().execute()\n"
        )
    first = invoke("execute", target, "-c", "local.yaml", "--run-id", "again")
    assert first.exit_code == 1
    assert store.read("again").run_config["launch"]["entry"] == str(flow) + target[7:]
    (workdir / "fixed").touch()
    result = invoke("retry", "again", "-c", "local.yaml")
    assert result.exit_code == 0, result.output
    run_log = store.read("again")
    assert run_log.status == "SUCCESS"
    assert run_log.step("flaky").status == "SUCCESS"


def test_retrying_a_run_that_fails_again_exits_1(
    invoke: Invoke, flow: Path, local_config: Path, store: RunLogStore
) -> None:
    assert (
        invoke("execute", "flow.py:retryable", "-c", "local.yaml", "--run-id", "r").exit_code == 1
    )
    result = invoke("retry", "r", "-c", "local.yaml")
    assert result.exit_code == 1
    assert "RuntimeError: not fixed yet" in result.stdout
    assert store.read("r").status == "FAIL"


SCRIPT = """
import os

from runnable_dask import Pipeline, PythonTask, Stub


def train():
    if os.environ.get("TRAINING_FIXED") != "1":
        raise RuntimeError("not fixed yet")
    print("trained")


def main():
    steps = [Stub(name="before"), PythonTask(name="train", function=train)]
    if os.environ.get("EXTRA_STEP"):
        steps.append(Stub(name="extra"))
    Pipeline(steps=steps).execute(configuration_file="local.yaml")


if __name__ == "__main__":
    main()
"""


def _process(args: list[str], workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    return subprocess.run(
        args,
        cwd=workdir,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(240)
def test_a_run_started_as_python_script_is_retried_by_its_id(
    workdir: Path, local_config: Path
) -> None:
    """Issue 17, point 5: the script's functions live in ``__main__`` when it runs and in
    the module ``pipe`` when ``retry`` imports it; the step keeps its identity."""
    (workdir / "pipe.py").write_text(SCRIPT)
    cli = str(Path(sys.executable).with_name("runnable-dask"))
    first = _process([sys.executable, "pipe.py"], workdir, RUNNABLE_RUN_ID="script-run")
    assert first.returncode == 1
    assert "runnable-dask retry script-run" in first.stdout  # what the summary tells a user

    changed = _process([cli, "retry", "script-run"], workdir, EXTRA_STEP="1")
    assert changed.returncode == 1
    assert "run 'script-run' cannot resume: the pipeline's definition changed" in (
        changed.stdout + changed.stderr
    )

    retried = _process([cli, "retry", "script-run"], workdir, TRAINING_FIXED="1")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    run_log = json.loads((workdir / ".run_log_store" / "script-run.json").read_text())
    assert run_log["status"] == "SUCCESS"
    attempts = [a["status"] for a in run_log["steps"]["train"]["attempts"]]
    assert attempts == ["FAIL", "SUCCESS"]


WITHOUT_MAIN = """
import os

from runnable_dask import Pipeline, PythonTask, Stub


def train():
    if os.environ.get("TRAINING_FIXED") != "1":
        raise RuntimeError("not fixed yet")
    print("trained")


if __name__ == "__main__":
    steps = [PythonTask(name="prepare", function=print), PythonTask(name="train", function=train)]
    Pipeline(steps=steps).execute(configuration_file="local.yaml")
"""


@pytest.mark.timeout(240)
def test_a_script_without_main_is_retried_as_the_summary_says(
    workdir: Path, local_config: Path
) -> None:
    """The summary of any failed run tells its user to ``retry`` it; a script with no
    ``main()`` runs again as ``python FILE.py`` runs it, ``__main__`` block included."""
    (workdir / "quick.py").write_text(WITHOUT_MAIN)
    cli = str(Path(sys.executable).with_name("runnable-dask"))
    first = _process([sys.executable, "quick.py"], workdir, RUNNABLE_RUN_ID="no-main")
    assert first.returncode == 1
    assert "runnable-dask retry no-main" in first.stdout

    retried = _process([cli, "retry", "no-main"], workdir, TRAINING_FIXED="1")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    run_log = json.loads((workdir / ".run_log_store" / "no-main.json").read_text())
    assert run_log["status"] == "SUCCESS"
    assert [a["status"] for a in run_log["steps"]["train"]["attempts"]] == ["FAIL", "SUCCESS"]
    assert len(run_log["steps"]["prepare"]["attempts"]) == 1  # kept, not run again

    executed = _process([cli, "execute", "quick.py", "--run-id", "fresh"], workdir)
    assert executed.returncode == 1  # the script ran: its train step failed again
    assert "Run fresh FAIL" in executed.stdout
