"""An interrupted run stops what it started (issue 17, point 4).

Each test runs a real driver (``python pipeline.py``) in its own session, waits for its
shell step's ``sleep`` to run, signals the driver and then looks, with psutil, for the
``sleep``: none may be left. Every process the test started is killed by group at the
end, pass or fail. ``TMPDIR`` is a private folder, so leftover scratch folders show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .conftest import DaskProcesses, start_scheduler, start_workers, stop, wait_for_workers
from .test_faults import kill_group

pytestmark = pytest.mark.cluster

PIPELINE = """
import sys
from runnable_dask import Parallel, Pipeline, ShellTask

def main():
    Pipeline(steps=[Parallel(name="par", branches={
        "slow": Pipeline(steps=[
            ShellTask(name="sleepy", command="echo started; sleep 300 & sleep 301; echo never")
        ]),
        "quick": Pipeline(steps=[ShellTask(name="quick", command="echo quick")]),
    })]).execute(configuration_file=sys.argv[1])

if __name__ == "__main__":
    main()
"""


def sleeps(marker: str) -> list[psutil.Process]:
    """The ``sleep 300``/``sleep 301`` processes of one test (found by its TMPDIR)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if (process.info["cmdline"] or [""])[0] != "sleep":
            continue
        try:
            if process.environ().get("TMPDIR") == marker:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def driver_folder(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The pipeline file, and an environment whose TMPDIR is private to the test."""
    (tmp_path / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env.pop("PYTHONPATH", None)
    env["TMPDIR"] = str(scratch)
    yield tmp_path, env
    for process in sleeps(str(scratch)):  # whatever the test left, it does not keep
        process.kill()


def write_config(folder: Path, executor: dict[str, object]) -> Path:
    path = folder / "config.yaml"
    path.write_text(json.dumps({"pipeline-executor": executor}), encoding="utf-8")
    return path


def start_driver(folder: Path, env: dict[str, str], config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "pipeline.py", str(config)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_sleeps(driver: subprocess.Popen, marker: str) -> list[psutil.Process]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = sleeps(marker)
        if len(found) == 2:
            return found
        assert driver.poll() is None, driver.communicate()[0]
        time.sleep(0.2)
    raise AssertionError("the shell step's sleeps never started")


def interrupt(
    folder: Path, env: dict[str, str], config: Path, signal_group: bool = False
) -> tuple[subprocess.Popen, str]:
    """Run the driver, SIGINT it while its sleeps run; its exit and its output."""
    driver = start_driver(folder, env, config)
    try:
        wait_for_sleeps(driver, env["TMPDIR"])
        time.sleep(0.3)
        if signal_group:  # as Ctrl-C in a terminal: the whole foreground group
            os.killpg(driver.pid, signal.SIGINT)
        else:
            driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=90)
    finally:
        kill_group(driver)
    return driver, output


def check_stopped(folder: Path, env: dict[str, str], driver: subprocess.Popen, output: str):
    time.sleep(0.5)  # a group just killed may take a moment to be reaped
    assert sleeps(env["TMPDIR"]) == [], "a sleep of the interrupted run still runs"
    assert driver.returncode == -signal.SIGINT  # a shell shows 130
    summary = output[output.index("FAIL in") :]
    assert "Traceback" not in output, output
    assert summary.rstrip().endswith("stopped")  # one line after the summary
    for line in summary.splitlines():
        if line.strip().startswith("log:"):
            assert Path(line.split("log:", 1)[1].strip()).exists(), line
    assert [p.name for p in Path(env["TMPDIR"]).glob("runnable-dask-*")] == []
    (log_file,) = (folder / ".run_log_store").glob("*.json")
    run_log = json.loads(log_file.read_text(encoding="utf-8"))
    assert run_log["status"] == "FAIL"
    sleepy = run_log["steps"]["par"]["branches"]["par.slow"]["steps"]["par.slow.sleepy"]
    assert sleepy["status"] == "FAIL"
    assert "KeyboardInterrupt" in sleepy["message"]
    assert "ended its processes" in sleepy["message"]
    ended = run_log["run_config"]["processes_ended"]
    assert [record["step"] for record in ended] == ["par.slow.sleepy"]
    quick = run_log["steps"]["par"]["branches"]["par.quick"]["steps"]["par.quick.quick"]
    assert quick["status"] == "SUCCESS"  # what finished before the interrupt is kept


@pytest.mark.timeout(180)
def test_sigint_to_a_local_run_ends_its_shell_commands(driver_folder) -> None:
    folder, env = driver_folder
    config = write_config(folder, {"type": "local"})
    driver, output = interrupt(folder, env, config)
    check_stopped(folder, env, driver, output)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signal_group", [False, True], ids=["driver", "terminal-group"])
def test_sigint_to_a_run_on_its_own_cluster_ends_its_shell_commands(
    driver_folder, signal_group: bool
) -> None:
    folder, env = driver_folder
    cluster = {"n_workers": 2, "dashboard_address": "127.0.0.1:0", "performance_report": False}
    config = write_config(folder, {"type": "dask", "config": cluster})
    driver, output = interrupt(folder, env, config, signal_group)
    check_stopped(folder, env, driver, output)
    assert "distributed" not in output  # no worker died noisily of the Ctrl-C


@pytest.mark.timeout(240)
def test_a_killed_driver_leaves_no_command_on_an_external_cluster(
    driver_folder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The driver is SIGKILLed: it can stop nothing. The scheduler forgets its tasks and
    the worker running the shell step ends the command's group by itself."""
    folder, env = driver_folder
    cluster: DaskProcesses = start_scheduler(tmp_path_factory.mktemp("external"))
    try:
        start_workers(cluster, 1, env={"TMPDIR": env["TMPDIR"]})
        wait_for_workers(cluster, 1)
        executor = {"address": cluster.address, "timeout": 10, "performance_report": False}
        config = write_config(folder, {"type": "dask", "config": executor})
        driver = start_driver(folder, env, config)
        try:
            wait_for_sleeps(driver, env["TMPDIR"])
        finally:
            kill_group(driver)
        scratch = Path(env["TMPDIR"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            sleeps(env["TMPDIR"]) or list(scratch.glob("runnable-dask-*"))
        ):
            time.sleep(0.2)
        assert sleeps(env["TMPDIR"]) == []
        assert [p.name for p in scratch.glob("runnable-dask-*")] == []
        with cluster.client() as client:  # the worker is still there, ready for more
            assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
    finally:
        stop(cluster.processes)
