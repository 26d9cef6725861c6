"""Faults with real processes (issue 4, item 5): a worker killed mid-step, the driver
killed mid-run, the scheduler lost mid-run.

Every process is real: ``dask scheduler`` and ``dask worker`` started by hand on
127.0.0.1 in folders of their own, and the driver run as the user runs it
(``runnable-dask execute FILE.py``, or ``python examples/...`` for the seed's example).
Processes are killed with SIGKILL, by pid, as an OOM killer or a lost machine would.
Whatever is started is killed by process group when the test ends, pass or fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runnable_dask.runtime import checkpoint
from runnable_dask.stores.catalog import RunCatalog
from runnable_dask.stores.runlog_store import RunLogNotFoundError, RunLogStore

from .conftest import (
    DASK,
    ROOT,
    DaskProcesses,
    start,
    start_scheduler,
    start_workers,
    stop,
    wait_for_workers,
)

pytestmark = pytest.mark.cluster

RUNNABLE_DASK = str(Path(sys.executable).with_name("runnable-dask"))
LOST_WORKER = "the worker running this attempt was lost"

# A step that says which worker process runs it (one line per attempt), then takes its time.
SLOW_STEP = '''
"""One slow step between two stubs."""
import os
import time
from pathlib import Path

from runnable_dask import Pipeline, PythonTask, Stub

MARKS = Path(@MARKS@)


def slow() -> None:
    with open(MARKS / "slow.pids", "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(3)


def main():
    Pipeline(
        steps=[Stub(name="before"), PythonTask(name="slow", function=slow), Stub(name="after")]
    ).execute()
'''

# A (fast), B (slow, marks its end), C: each run of a step appends a line to its file.
THREE_STEPS = '''
"""A fast step, a slow one, a fast one; every execution leaves a line in MARKS."""
import os
import time
from pathlib import Path

from runnable_dask import Pipeline, PythonTask

MARKS = Path(@MARKS@)


def mark(name: str) -> None:
    with open(MARKS / f"{name}.runs", "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\\n")


def step_a() -> None:
    mark("A")


def step_b() -> None:
    mark("B")
    time.sleep(3)
    (MARKS / "B.done").write_text("done", encoding="utf-8")


def step_c() -> None:
    mark("C")


def main():
    Pipeline(
        steps=[
            PythonTask(name="A", function=step_a),
            PythonTask(name="B", function=step_b),
            PythonTask(name="C", function=step_c),
        ]
    ).execute()
'''

# Four batches of ten slow items, one per worker thread: every run of an item leaves a line.
BATCHED_MAP = '''
"""A map of slow items in batches of ten; every run of an item leaves "item pid" in MARKS."""
import os
import time
from pathlib import Path

from runnable_dask import Map, Pipeline, PythonTask

MARKS = Path(@MARKS@)


def make() -> list[int]:
    return list(range(40))


def work(item: int) -> int:
    time.sleep(0.3)
    with open(MARKS / "items.runs", "a", encoding="utf-8") as handle:
        handle.write(f"{item} {os.getpid()}\\n")
    return item


def main():
    branch = Pipeline(steps=[PythonTask(name="work", function=work, returns=["w"])])
    Pipeline(
        steps=[
            PythonTask(name="make", function=make, returns=["items"]),
            Map(name="m", branch=branch, iterate_on="items", iterate_as="item", batch_size=10),
        ]
    ).execute()
'''


# --- helpers ---------------------------------------------------------------------------


def write_pipeline(folder: Path, name: str, text: str) -> tuple[Path, Path]:
    """The pipeline file and the folder its steps mark (absolute: workers run elsewhere)."""
    marks = folder / "marks"
    marks.mkdir(exist_ok=True)
    script = folder / f"{name}.py"
    script.write_text(text.replace("@MARKS@", repr(str(marks))), encoding="utf-8")
    return script, marks


def launch(
    command: list[str],
    cwd: Path,
    config: Path | None = None,
    run_id: str = "",
    logs: Path | None = None,
) -> subprocess.Popen:
    """A driver in its own session (its LocalCluster, if any, goes with it); its output
    goes to files in ``logs`` (default: ``cwd``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env.pop("PYTHONPATH", None)
    if config is not None:
        env["RUNNABLE_CONFIGURATION_FILE"] = str(config)
    if run_id:
        env["RUNNABLE_RUN_ID"] = run_id
    stem = (logs or cwd) / f"driver-{time.monotonic_ns()}"
    with open(f"{stem}.out", "wb") as out, open(f"{stem}.err", "wb") as err:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
    process.output_files = (Path(f"{stem}.out"), Path(f"{stem}.err"))  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    """Wait for a driver; its exit status, stdout and stderr."""
    process.wait(timeout=timeout)
    out, err = process.output_files  # type: ignore[attr-defined]
    return process.returncode, out.read_text(errors="replace"), err.read_text(errors="replace")


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its session's group; reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def read_log(path: Path) -> dict[str, Any] | None:
    """The run log as a reader sees it mid-run (through the store: its parts folded in)."""
    try:
        return json.loads(RunLogStore(path.parent).read_bytes(path.stem))
    except (OSError, ValueError, RunLogNotFoundError):
        return None


def step(log: dict[str, Any] | None, *path: str) -> dict[str, Any] | None:
    """A step's record: ``step(log, "parallel_step", "parallel_step.branch1", "...x")``."""
    if log is None:
        return None
    found: dict[str, Any] | None = log["steps"].get(path[0])
    for branch, name in zip(path[1::2], path[2::2], strict=True):
        if found is None:
            return None
        found = found["branches"].get(branch, {}).get("steps", {}).get(name)
    return found


def status(log: dict[str, Any] | None, *path: str) -> str | None:
    record = step(log, *path)
    return None if record is None else record["status"]


def all_steps(steps: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for record in steps.values():
        yield record
        for branch in record.get("branches", {}).values():
            yield from all_steps(branch["steps"])


def wait_until(
    condition: Callable[[], Any], what: str, process: subprocess.Popen, timeout: float = 60
) -> Any:
    """Poll ``condition`` until it is truthy; fail early if the driver ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            code, out, err = finish(process, 1)
            pytest.fail(f"the driver ended (exit {code}) before {what}:\n{out}\n{err}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def start_lone_workers(cluster: DaskProcesses, n: int) -> None:
    """``n`` worker processes without a nanny: one killed stays dead, the others survive."""
    cluster.worker_folder.mkdir(exist_ok=True)
    for index in range(n):
        command = [DASK, "worker", cluster.address, "--host", "127.0.0.1", "--no-dashboard"]
        command += ["--no-nanny", "--nworkers", "1", "--nthreads", "2", "--name", f"lone-{index}"]
        log = cluster.worker_folder.parent / f"lone-{index}.log"
        cluster.processes.append(start(command, cluster.worker_folder, log))


def config_for(cluster: DaskProcesses, folder: Path) -> Path:
    """``address: tcp://127.0.0.1:PORT`` with a short reconnect/connect timeout."""
    return cluster.config(folder, timeout=5)


@pytest.fixture
def two_lone_workers(tmp_path: Path) -> Iterator[DaskProcesses]:
    """A scheduler and two nanny-less worker processes of their own (one will be killed)."""
    base = tmp_path / "dask"
    base.mkdir()
    cluster = start_scheduler(base)
    try:
        start_lone_workers(cluster, 2)
        wait_for_workers(cluster, 2)
        yield cluster
    finally:
        stop(cluster.processes)


@pytest.fixture
def drivers() -> Iterator[list[subprocess.Popen]]:
    """Driver processes a test starts: their groups are killed when it ends, pass or fail."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        kill_group(process)


# --- 1. a worker killed mid-step -------------------------------------------------------


def test_worker_killed_mid_step_reruns_it_on_the_survivor(
    two_lone_workers: DaskProcesses, tmp_path: Path, drivers: list[subprocess.Popen]
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    script, marks = write_pipeline(folder, "slow_pipeline", SLOW_STEP)
    config = config_for(two_lone_workers, folder)
    run_log = folder / "run_logs" / "worker-killed.json"
    with two_lone_workers.client() as client:
        worker_pids = set(client.run(os.getpid).values())

    driver = launch([RUNNABLE_DASK, "execute", str(script)], folder, config, "worker-killed")
    drivers.append(driver)
    victim = int(wait_until(lambda: lines(marks / "slow.pids"), "the slow step started", driver)[0])
    wait_until(
        lambda: status(read_log(run_log), "slow") == "PROCESSING",
        "the run log shows the step running",
        driver,
    )
    assert victim in worker_pids
    os.kill(victim, signal.SIGKILL)

    code, out, err = finish(driver, 90)
    assert code == 0, out + err
    log = read_log(run_log)
    assert log is not None and log["status"] == "SUCCESS"
    attempts = step(log, "slow")["attempts"]
    assert [a["status"] for a in attempts] == ["FAIL", "SUCCESS"], attempts
    assert LOST_WORKER in attempts[0]["message"]
    pids = [int(pid) for pid in lines(marks / "slow.pids")]
    assert len(pids) == 2 and pids[1] != victim and pids[1] in worker_pids, pids
    assert status(log, "after") == "SUCCESS"


def finished_items(log: dict[str, Any] | None) -> set[int]:
    """The map's items the run log records as succeeded."""
    branches = (step(log, "m") or {}).get("branches", {})
    return {int(name[2:]) for name, b in branches.items() if b["status"] == "SUCCESS"}


def item_runs(marks: Path) -> list[tuple[int, int]]:
    """Each run of a map item so far: the item and the worker process that ran it."""
    path = marks / "items.runs"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [(int(line.split()[0]), int(line.split()[1])) for line in text.splitlines()]


def test_worker_killed_mid_batch_loses_no_finished_item(
    two_lone_workers: DaskProcesses, tmp_path: Path, drivers: list[subprocess.Popen]
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    script, marks = write_pipeline(folder, "batched_map", BATCHED_MAP)
    config = config_for(two_lone_workers, folder)
    run_log = folder / "run_logs" / "batch-killed.json"
    with two_lone_workers.client() as client:
        worker_pids = set(client.run(os.getpid).values())

    driver = launch([RUNNABLE_DASK, "execute", str(script)], folder, config, "batch-killed")
    drivers.append(driver)
    recorded = wait_until(
        lambda: finished_items(read_log(run_log)), "items recorded as finished", driver
    )
    victim = dict(item_runs(marks))[min(recorded)]
    assert victim in worker_pids
    os.kill(victim, signal.SIGKILL)

    code, out, err = finish(driver, 120)
    assert code == 0, out + err
    log = read_log(run_log)
    assert log is not None and log["status"] == "SUCCESS"
    assert finished_items(log) == set(range(40))
    runs = item_runs(marks)
    ran = Counter(item for item, _ in runs)
    assert {item: ran[item] for item in recorded} == dict.fromkeys(recorded, 1), runs
    on_victim = {item for item, pid in runs if pid == victim}
    # Its two batches were cut short: their other items ran on the survivor.
    assert 0 < len(on_victim) < 20, runs
    assert all(pid != victim for item, pid in runs if item not in on_victim)
    # What finished on the killed worker was kept, bar an item killed between its end
    # and its checkpoint (one per worker thread at most).
    assert sum(ran[item] - 1 for item in on_victim) <= 2, runs


def kill_the_first_worker_to_start_a_notebook(client: Any, marker: Path) -> None:
    """Make the first worker that starts executing a ``hello_notebook`` task kill itself
    then, its pid written to ``marker`` first.

    The kill is decided inside the worker, at the task's move to executing: with warm
    kernels the seed's notebook runs in a tenth of a second, so a kill sent after the
    driver saw the step running could land after it ended (and its checkpoint was kept)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class KillAtFirstNotebook(WorkerPlugin):
        name = "kill-at-first-notebook"

        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            if finish != "executing" or not str(key).startswith("hello_notebook-"):
                return
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:  # another worker was first
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)

    client.register_plugin(KillAtFirstNotebook())


def test_seed_parallel_example_survives_a_killed_worker(
    two_lone_workers: DaskProcesses, tmp_path: Path, drivers: list[subprocess.Popen]
) -> None:
    """The done-when of issue 3, on workers started by hand: the worker that starts a
    ``hello_notebook`` (the seed example's notebook step) is killed, and the run completes
    on the survivor, every step recorded as succeeded. (How a lost attempt is recorded is
    checked with a step that stays running until its worker is killed, above.)"""
    run_id = "parallel-worker-killed"
    config = config_for(two_lone_workers, tmp_path)
    run_log = tmp_path / "run_logs" / f"{run_id}.json"
    marker = tmp_path / "killed.pid"
    branches = ["parallel_step.branch1", "parallel_step.branch2"]
    with two_lone_workers.client() as client:
        worker_pids = set(client.run(os.getpid).values())
        kill_the_first_worker_to_start_a_notebook(client, marker)

    command = [sys.executable, "examples/06-parallel/parallel.py"]
    driver = launch(command, ROOT, config, run_id, logs=tmp_path)
    drivers.append(driver)
    code, out, err = finish(driver, 120)
    assert code == 0, out + err

    victim = int(marker.read_text(encoding="utf-8"))
    assert victim in worker_pids
    (killed,) = [p for p in two_lone_workers.processes if p.pid == victim]
    assert killed.wait(timeout=10) == -signal.SIGKILL
    log = read_log(run_log)
    assert log is not None and log["status"] == "SUCCESS"
    for branch in branches:
        record = step(log, "parallel_step", branch, f"{branch}.hello_notebook")
        assert record is not None and record["status"] == "SUCCESS"
        attempts = record["attempts"]
        assert attempts[-1]["status"] == "SUCCESS"
        # A lost attempt, when its start was recorded before the kill, stays as failed.
        assert all(LOST_WORKER in a["message"] for a in attempts[:-1]), attempts
    assert status(log, "continue_processing") == "SUCCESS"
    catalog = tmp_path / "catalog" / run_id
    assert len(list(catalog.rglob("*hello_notebook*.ipynb"))) == 2, sorted(catalog.rglob("*"))


# --- 2. the driver killed mid-run ------------------------------------------------------


def test_driver_killed_mid_run_resumes_only_the_rest(
    tmp_path: Path, drivers: list[subprocess.Popen]
) -> None:
    """Default configuration: the driver's own LocalCluster dies with it."""
    script, marks = write_pipeline(tmp_path, "three_steps", THREE_STEPS)
    run_id = "driver-killed"
    run_log = tmp_path / ".run_log_store" / f"{run_id}.json"

    driver = launch([RUNNABLE_DASK, "execute", str(script), "--run-id", run_id], tmp_path)
    drivers.append(driver)
    wait_until(
        lambda: (
            lines(marks / "A.runs")
            and lines(marks / "B.runs")
            and status(read_log(run_log), "A") == "SUCCESS"
            and status(read_log(run_log), "B") == "PROCESSING"
        ),
        "A finished and B running (both in the run log)",
        driver,
    )
    kill_group(driver)
    deadline = time.monotonic() + 10
    while group_members(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_members(driver.pid), "processes of the killed driver remain"

    log = read_log(run_log)
    assert log is not None and log["status"] == "PROCESSING"
    assert status(log, "A") == "SUCCESS"
    assert status(log, "C") is None
    assert not (marks / "B.done").exists()

    retry = launch([RUNNABLE_DASK, "retry", run_id], tmp_path)
    drivers.append(retry)
    code, out, err = finish(retry, 120)
    assert code == 0, out + err
    log = read_log(run_log)
    assert log is not None and log["status"] == "SUCCESS", out + err
    assert log["run_config"]["resumed"] == 1
    assert len(lines(marks / "A.runs")) == 1, "A ran again"
    assert len(lines(marks / "B.runs")) == 2
    assert len(lines(marks / "C.runs")) == 1
    assert (marks / "B.done").exists()
    b_attempts = step(log, "B")["attempts"]
    assert [a["status"] for a in b_attempts] == ["FAIL", "SUCCESS"], b_attempts
    assert "interrupted" in b_attempts[0]["message"]
    assert len(step(log, "A")["attempts"]) == 1


# --- 3. the scheduler lost mid-run -----------------------------------------------------


def run_and_lose_the_scheduler(
    base: Path, project: Path, run_id: str, drivers: list[subprocess.Popen]
) -> tuple[int, str, str]:
    """Run THREE_STEPS by address; SIGKILL ``dask scheduler`` while B sleeps. The driver's
    exit status, stdout and stderr; a driver that has not given up after 90 s fails the
    test (its reconnect timeout is 5 s)."""
    script, marks = project / "three_steps.py", project / "marks"
    run_log = project / "run_logs" / f"{run_id}.json"
    cluster = start_scheduler(base)
    try:
        start_workers(cluster, 2)
        wait_for_workers(cluster, 2)
        config = config_for(cluster, project)
        driver = launch([RUNNABLE_DASK, "execute", str(script)], project, config, run_id)
        drivers.append(driver)
        wait_until(
            lambda: (
                lines(marks / "B.runs")
                and status(read_log(run_log), "A") == "SUCCESS"
                and status(read_log(run_log), "B") == "PROCESSING"
            ),
            "A finished and B running (both in the run log)",
            driver,
        )
        os.kill(cluster.processes[0].pid, signal.SIGKILL)  # the `dask scheduler` process
        return finish(driver, 90)
    finally:
        stop(cluster.processes)


def resume_on_a_new_cluster(
    base: Path, project: Path, run_id: str, drivers: list[subprocess.Popen]
) -> tuple[int, str, str, str]:
    """A new scheduler and workers; the configuration now names it; ``retry``. The
    retry's exit status, stdout, stderr, and the new scheduler's address."""
    cluster = start_scheduler(base)
    try:
        start_workers(cluster, 2)
        wait_for_workers(cluster, 2)
        config = config_for(cluster, project)  # the same file, now naming the new scheduler
        retry = launch([RUNNABLE_DASK, "retry", run_id], project, config)
        drivers.append(retry)
        return (*finish(retry, 120), cluster.address)
    finally:
        stop(cluster.processes)


def test_scheduler_lost_fails_clearly_then_resumes_elsewhere(
    tmp_path: Path, drivers: list[subprocess.Popen]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _, marks = write_pipeline(project, "three_steps", THREE_STEPS)
    run_id = "scheduler-lost"
    run_log = project / "run_logs" / f"{run_id}.json"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()

    code, out, err = run_and_lose_the_scheduler(tmp_path / "first", project, run_id, drivers)

    assert code != 0, out + err
    assert "Traceback" not in err, err
    log = read_log(run_log)
    assert log is not None and log["status"] == "FAIL"
    error = log["run_config"].get("error", "")
    assert "connection to the scheduler" in error, error
    assert "connection to the scheduler" in out, out
    assert status(log, "A") == "SUCCESS"
    assert status(log, "B") == "FAIL"
    assert status(log, "C") is None
    # B may have finished on a worker that outlived its scheduler: then its checkpoint
    # stands and resuming must not run it again; otherwise it runs once more.
    b_finished = "B" in checkpoint.load_all(RunCatalog(str(project / "catalog"), run_id))

    code, out, err, address = resume_on_a_new_cluster(tmp_path / "second", project, run_id, drivers)

    assert code == 0, out + err
    log = read_log(run_log)
    assert log is not None and log["status"] == "SUCCESS", out + err
    assert f"Dask scheduler {address}" in out, out
    assert len(lines(marks / "A.runs")) == 1, "A ran again"
    assert len(lines(marks / "B.runs")) == (1 if b_finished else 2)
    assert len(lines(marks / "C.runs")) == 1
    assert (marks / "B.done").exists()
    assert [a["status"] for a in step(log, "A")["attempts"]] == ["SUCCESS"]
    assert step(log, "B")["attempts"][-1]["status"] == "SUCCESS"
