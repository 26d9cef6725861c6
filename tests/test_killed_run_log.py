"""A driver killed mid-map on a real cluster: its run log, written in parts while the
map ran, is readable as it stood (items, statuses, ``show``), and resuming the run
re-runs only the items that had not finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from distributed import LocalCluster

from runnable_dask.cli import cli
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStore

pytestmark = pytest.mark.cluster

ITEMS = 16
QUICK = 12
"""Items below this finish at once; the others (fewer than the threads) wait for the file
``release``."""

DRIVER = """
import sys
import time
from pathlib import Path

from runnable_dask import Map, Pipeline, PythonTask


def work(item: int, folder: str) -> int:
    calls = Path(folder) / "calls" / str(item)
    calls.parent.mkdir(exist_ok=True)
    with calls.open("a") as handle:
        handle.write("x")
    while item >= QUICK and not (Path(folder) / "release").exists():
        time.sleep(0.05)
    return item


if __name__ == "__main__":
    branch = Pipeline(steps=[PythonTask(name="work", function=work, returns=["out"])])
    pipeline = Pipeline(steps=[Map(name="m", branch=branch, iterate_on="items", iterate_as="item")])
    pipeline.execute("dask.yaml", run_id="killed", parameters_file="params.yaml")
""".replace("QUICK", str(QUICK))


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2, threads_per_worker=4, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local_cluster:
        yield local_cluster


def start_driver(workdir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "driver.py"],
        cwd=workdir,
        env={k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished_items(store: RunLogStore) -> int:
    try:
        log = store.read("killed")
    except (RunLogNotFoundError, ValueError):
        return 0
    if "m" not in log.steps:
        return 0
    return [b.status for b in log.steps["m"].branches.values()].count("SUCCESS")


@pytest.mark.timeout(300)
def test_a_killed_driver_leaves_a_readable_log_and_resume_runs_only_the_rest(
    cluster: LocalCluster, workdir: Path
) -> None:
    executor = {"type": "dask", "config": {"address": cluster.scheduler_address}}
    (workdir / "dask.yaml").write_text(yaml.safe_dump({"pipeline-executor": executor}))
    (workdir / "params.yaml").write_text(
        yaml.safe_dump({"items": list(range(ITEMS)), "folder": str(workdir)})
    )
    (workdir / "driver.py").write_text(DRIVER)
    store = RunLogStore(workdir / ".run_log_store")

    driver = start_driver(workdir)
    deadline = time.monotonic() + 180
    while finished_items(store) < QUICK and time.monotonic() < deadline:
        assert driver.poll() is None, driver.communicate()[0]
        time.sleep(0.1)
    assert finished_items(store) == QUICK
    assert (workdir / ".run_log_store" / ".killed.parts").exists()  # written in parts
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=60)

    # Readable as it stood: every item listed, the quick ones finished, the run going.
    log = store.read("killed")
    assert log.status == "PROCESSING"
    statuses = [b.status for b in log.steps["m"].branches.values()]
    assert statuses == ["SUCCESS"] * QUICK + ["PROCESSING"] * (ITEMS - QUICK)
    assert log.step("m.3.work").attempts[0].status == "SUCCESS"
    shown = CliRunner().invoke(cli, ["show", "killed", "--log-folder", str(store.location)])
    assert shown.exit_code == 0, shown.output
    assert "Run killed PROCESSING" in shown.output
    assert f"{ITEMS} branches" in shown.output
    listed = CliRunner().invoke(cli, ["runs", "--log-folder", str(store.location)])
    assert "killed" in listed.output and "PROCESSING" in listed.output

    # Resumed: the finished items are not run again; the run ends as one document.
    (workdir / "release").touch()
    resumed = start_driver(workdir)
    output, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, output
    calls = {int(p.name): len(p.read_text()) for p in (workdir / "calls").iterdir()}
    assert all(calls[i] == 1 for i in range(QUICK)), calls
    assert sorted(calls) == list(range(ITEMS))
    final = store.read("killed")
    assert final.status == "SUCCESS"
    assert final.parameters["out"].value == list(range(ITEMS))
    assert not (workdir / ".run_log_store" / ".killed.parts").exists()
