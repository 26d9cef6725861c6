"""The dashboard's Pipeline page and its JSON, on a scheduler started by hand with
``--preload runnable_dask.dashboard``, and on the LocalCluster a run starts for itself.

A pipeline of every kind of step runs as a user's script; some of its steps wait for a
file the test creates, so the test sees them running (and retrying) through the JSON
before letting them end, then compares what the page says with the run log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    DASK,
    START_TIMEOUT,
    DaskProcesses,
    start,
    start_workers,
    stop,
    wait_for_workers,
    write_config,
)

pytestmark = pytest.mark.cluster

FLOW = textwrap.dedent(
    """
    import os
    import pathlib
    import time

    from runnable_dask import Conditional, Loop, Map, Parallel, Pipeline, PythonTask

    GATE = os.environ["GATE"]


    def wait_for(name):
        while not pathlib.Path(GATE, name).exists():
            time.sleep(0.05)


    def held():
        wait_for("held")


    def flaky():
        tried = pathlib.Path(GATE, "flaky-tried")
        if not tried.exists():
            tried.touch()
            raise ValueError("the first attempt fails")
        wait_for("flaky")


    def make():
        return list(range(200)), "small"


    def square(x: int):
        if x == 3:
            raise ValueError("item 3 fails")
        return x * x


    def count(i: int):
        return i >= 2


    def main():
        square_it = Pipeline(steps=[PythonTask(name="square", function=square, returns=["sq"])])
        sizes = {
            "small": Pipeline(steps=[PythonTask(name="small_step", function=held)]),
            "large": Pipeline(steps=[PythonTask(name="large_step", function=held)]),
        }
        looped = Pipeline(steps=[PythonTask(name="tick", function=count, returns=["done"])])
        branches = {
            "held": Pipeline(steps=[PythonTask(name="wait", function=held)]),
            "flaky": Pipeline(steps=[PythonTask(name="flaky", function=flaky, retries=1)]),
            "mapped": Pipeline(
                steps=[
                    PythonTask(name="make", function=make, returns=["xs", "size"]),
                    Map(name="squares", branch=square_it, iterate_on="xs", iterate_as="x"),
                    Conditional(name="route", parameter="size", branches=sizes),
                ]
            ),
            "looped": Pipeline(
                steps=[
                    Loop(
                        name="ticks", branch=looped, max_iterations=5, break_on="done",
                        index_as="i",
                    )
                ]
            ),
        }
        Pipeline(steps=[Parallel(name="fan", branches=branches)]).execute()


    if __name__ == "__main__":
        main()
    """
)
# The map fails (item 3), so its branch stops there: the conditional after it never runs.
RUN_ID = "page-run"
STATES = {"SUCCESS": "succeeded", "FAIL": "failed"}


def start_scheduler_with_page(base: Path) -> tuple[DaskProcesses, str]:
    """``dask scheduler --preload runnable_dask.dashboard``; its address and dashboard."""
    folder = base / "scheduler"
    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    command = [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0"]
    command += ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)]
    command += ["--preload", "runnable_dask.dashboard"]
    process = start(command, folder, base / "scheduler.log")
    deadline = time.monotonic() + START_TIMEOUT
    while not scheduler_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop([process])
            raise RuntimeError((base / "scheduler.log").read_text())
        time.sleep(0.1)
    time.sleep(0.1)
    info = json.loads(scheduler_file.read_text())
    dashboard = f"http://127.0.0.1:{info['services']['dashboard']}"
    return DaskProcesses(info["address"], base / "workers", [process]), dashboard


@pytest.fixture(scope="module")
def page_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaskProcesses, str]]:
    cluster, dashboard = start_scheduler_with_page(tmp_path_factory.mktemp("page"))
    try:
        start_workers(cluster, 2)
        wait_for_workers(cluster, 2)
        yield cluster, dashboard
    finally:
        stop(cluster.processes)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def fetch_json(url: str) -> Any:
    status, body = fetch(url)
    assert status == 200, body
    return json.loads(body)


def wait_until(check: Any, what: str, process: subprocess.Popen, timeout: float = 60) -> Any:
    """Poll ``check`` until it gives something true (a hang guard, not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()}")
        time.sleep(0.2)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def row(run: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((r for r in run["steps"] if r["name"] == name), None)


def launch(folder: Path, config: Path, gate: Path) -> subprocess.Popen:
    (folder / "flow.py").write_text(FLOW, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env |= {"RUNNABLE_CONFIGURATION_FILE": str(config), "RUNNABLE_RUN_ID": RUN_ID}
    env["GATE"] = str(gate)
    return subprocess.Popen(
        [sys.executable, "flow.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@dataclass
class PageRun:
    """What the test saw of one run: through the page while it ran, and after."""

    dashboard: str
    folder: Path
    live: dict[str, Any]
    listed_live: list[dict[str, Any]]
    page_status: int
    output: str
    returncode: int

    @property
    def url(self) -> str:
        return f"{self.dashboard}/runnable-dask/runs/{RUN_ID}"

    def log(self) -> dict[str, Any]:
        path = self.folder / "run_logs" / f"{RUN_ID}.json"
        return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page_run(
    page_cluster: tuple[DaskProcesses, str], tmp_path_factory: pytest.TempPathFactory
) -> PageRun:
    """The flow, watched: held until a step shows running and another retrying."""
    cluster, dashboard = page_cluster
    folder = tmp_path_factory.mktemp("flow")
    gate = folder / "gate"
    gate.mkdir()
    process = launch(folder, cluster.config(folder), gate)
    url = f"{dashboard}/runnable-dask/runs/{RUN_ID}"
    try:

        def live() -> dict[str, Any] | None:
            code, body = fetch(url)
            if code != 200:
                return None
            run = json.loads(body)
            waiting, flaky = row(run, "fan.held.wait"), row(run, "fan.flaky.flaky")
            ready = waiting and waiting["state"] == "running" and flaky
            return run if ready and flaky["state"] == "retrying" else None

        seen = wait_until(live, "a step running and a step retrying", process)
        listed = fetch_json(f"{dashboard}/runnable-dask/runs")["runs"]
        page_status = fetch(f"{dashboard}/individual-pipeline")[0]
    finally:
        (gate / "held").touch()
        (gate / "flaky").touch()
        output, _ = process.communicate(timeout=180)
    return PageRun(dashboard, folder, seen, listed, page_status, output, process.returncode)


@pytest.mark.timeout(240)
def test_the_page_is_in_the_dashboards_menu(page_cluster: tuple[DaskProcesses, str]) -> None:
    status, menu = fetch(f"{page_cluster[1]}/status")
    assert status == 200 and 'individual-pipeline">Pipeline<' in menu  # under "More..."


@pytest.mark.timeout(240)
def test_the_page_shows_steps_running_and_retrying_while_the_run_goes_on(
    page_run: PageRun,
) -> None:
    assert page_run.live["status"] == "running"
    assert page_run.page_status == 200
    flaky = row(page_run.live, "fan.flaky.flaky")
    assert flaky["attempts"] == 2 and flaky["message"] == "ValueError: the first attempt fails"
    assert page_run.listed_live[0]["run_id"] == RUN_ID
    assert page_run.listed_live[0]["status"] == "running"


@pytest.mark.timeout(240)
def test_after_the_run_the_page_agrees_with_the_run_log(page_run: PageRun) -> None:
    assert page_run.returncode == 1, page_run.output  # item 3 of the map fails
    run, log = fetch_json(page_run.url), page_run.log()
    assert run["status"] == "failed" == STATES[log["status"]]
    shown = {r["name"]: r for r in run["steps"]}
    checked = set()
    for name, step in walk(log["steps"]):
        if name in shown:
            assert shown[name]["state"] == STATES[step["status"]], name
            if step["step_type"] == "task":
                assert shown[name]["attempts"] == len(step["attempts"]), name
            checked.add(name)
    assert checked == {
        "fan",
        "fan.held.wait",
        "fan.flaky.flaky",
        "fan.mapped.make",
        "fan.mapped.squares",
        "fan.mapped.squares.3.square",  # the item shown: the failed one
        "fan.looped.ticks",
        "fan.looped.ticks.2.tick",  # the iteration shown: the last
    }
    assert shown["fan.mapped.route"]["state"] == "not run"  # after the failed map
    assert shown["fan.flaky.flaky"]["message"].startswith("after 1 failed: ValueError")
    log_path = f"{page_run.folder}/catalog/{RUN_ID}/logs/fan.held.wait.execution.log"
    assert shown["fan.held.wait"]["log"] == log_path
    assert fetch(f"{page_run.dashboard}/runnable-dask/runs/nope")[0] == 404


@pytest.mark.timeout(240)
def test_a_map_is_counts_by_state_and_one_item_opened(page_run: PageRun) -> None:
    run, log = fetch_json(page_run.url), page_run.log()
    shown = {r["name"]: r for r in run["steps"]}
    by_state: dict[str, int] = {}
    for branch in log_step(log, "fan.mapped.squares")["branches"].values():
        by_state[STATES[branch["status"]]] = by_state.get(STATES[branch["status"]], 0) + 1
    assert by_state == {"succeeded": 199, "failed": 1}
    assert shown["fan.mapped.squares"]["items"] == {"total": 200, "counts": by_state}
    assert shown["fan.mapped.squares.3.square"]["message"] == "ValueError: item 3 fails"
    assert "fan.mapped.squares.4.square" not in shown
    failed = fetch_json(f"{page_run.url}/items?map=fan.mapped.squares&state=failed")
    assert failed["items"] == [{"item": "3", "state": "failed"}]
    other = fetch_json(f"{page_run.url}?open=fan.mapped.squares=150")
    assert row(other, "fan.mapped.squares.150.square")["state"] == "succeeded"
    ticks = shown["fan.looped.ticks"]["items"]
    assert ticks["total"] == len(log_step(log, "fan.looped.ticks")["branches"]) == 3


def walk(steps: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, step in steps.items():
        yield name, step
        for branch in step.get("branches", {}).values():
            yield from walk(branch["steps"])


def log_step(log: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for found, step in walk(log["steps"]) if found == name)


CHECK_PRELOAD = textwrap.dedent(
    """
    from runnable_dask import Pipeline, PythonTask


    def plugins():
        from distributed import get_client

        return get_client().run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.plugins))


    if __name__ == "__main__":
        Pipeline(steps=[PythonTask(name="ask", function=plugins, returns=["plugins"])]).execute()
    """
)


@pytest.mark.timeout(120)
def test_a_runs_own_local_cluster_has_the_page(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(CHECK_PRELOAD, encoding="utf-8")
    config = write_config(tmp_path, {"n_workers": 1, "dashboard_address": "127.0.0.1:0"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env |= {"RUNNABLE_CONFIGURATION_FILE": str(config), "RUNNABLE_RUN_ID": "own"}
    done = subprocess.run(
        [sys.executable, "flow.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    log = json.loads((tmp_path / "run_logs" / "own.json").read_text(encoding="utf-8"))
    assert "runnable-dask-pipeline" in log["parameters"]["plugins"]["value"]


CACHED_FLOW = textwrap.dedent(
    """
    from runnable_dask import Map, Pipeline, PythonTask


    def make():
        return [1, 2, 3]


    def square(x: int):
        return x * x


    def main():
        fit = PythonTask(name="square", function=square, returns=["sq"], cache=True)
        Pipeline(
            steps=[
                PythonTask(name="make", function=make, returns=["xs"], cache=True),
                Map(name="squares", branch=Pipeline(steps=[fit]), iterate_on="xs",
                    iterate_as="x"),
                PythonTask(name="uncached", function=make, returns=["ys"]),
            ]
        ).execute()


    if __name__ == "__main__":
        main()
    """
)


@pytest.mark.timeout(240)
def test_a_step_from_the_cache_shows_as_cached(
    page_cluster: tuple[DaskProcesses, str], tmp_path: Path
) -> None:
    cluster, dashboard = page_cluster
    (tmp_path / "flow.py").write_text(CACHED_FLOW, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env["RUNNABLE_CONFIGURATION_FILE"] = str(cluster.config(tmp_path))
    for run_id in ("cache-first", "cache-again"):
        done = subprocess.run(
            [sys.executable, "flow.py"],
            cwd=tmp_path,
            env=env | {"RUNNABLE_RUN_ID": run_id},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    first = fetch_json(f"{dashboard}/runnable-dask/runs/cache-first?open=squares=2")
    again = fetch_json(f"{dashboard}/runnable-dask/runs/cache-again?open=squares=2")
    assert row(first, "make")["state"] == "succeeded"
    assert row(again, "make")["state"] == "cached"
    assert row(first, "squares.2.square")["state"] == "succeeded"
    assert row(again, "squares.2.square")["state"] == "cached"
    assert row(again, "uncached")["state"] == "succeeded"
    assert again["status"] == "succeeded"
    assert again["counts"] == {"cached": 4, "succeeded": 1}
    listed = {r["run_id"]: r for r in fetch_json(f"{dashboard}/runnable-dask/runs")["runs"]}
    assert listed["cache-first"]["steps"] == {"succeeded": 5}
    assert listed["cache-again"]["steps"] == {"cached": 4, "succeeded": 1}
