"""When ``execute()`` returns, every process the run started has exited (issue 12): the
worker processes of the LocalCluster started for it, multiprocessing's helper process,
the shell commands of its steps; looked up in this process's tree, as ``ps`` shows it."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from runnable_dask import Parallel, Pipeline, ShellTask, Stub
from runnable_dask.exceptions import RunLogExistsError

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def descendants() -> dict[int, str]:
    """This process's live descendants (exited ones not yet reaped do not count)."""
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                found[process.pid] = " ".join(process.cmdline())[:160]
        except psutil.NoSuchProcess:
            continue
    return found


def branch(name: str) -> Pipeline:
    return Pipeline(steps=[ShellTask(name=f"{name}_shell", command="sleep 0.2; echo hi")])


def test_no_process_of_a_run_on_its_own_cluster_outlives_execute(workdir: Path) -> None:
    before = descendants()
    pipeline = Pipeline(
        steps=[
            Parallel(name="fan", branches={"a": branch("a"), "b": branch("b")}),
            Stub(name="after"),
        ]
    )
    run_log = pipeline.execute()  # the default configuration: a LocalCluster for the run
    assert run_log.status == "SUCCESS"
    left = {pid: command for pid, command in descendants().items() if pid not in before}
    assert left == {}


def test_a_run_refused_while_its_cluster_starts_leaves_no_process(workdir: Path) -> None:
    # The run's own cluster starts as soon as the run is planned, while its run log is
    # claimed; a run id taken already refuses the run there, and the cluster goes too.
    pipeline = Pipeline(steps=[Stub(name="only")])
    assert pipeline.execute(run_id="taken").status == "SUCCESS"
    before = descendants()
    with pytest.raises(RunLogExistsError, match="taken"):
        pipeline.execute(run_id="taken")
    left = {pid: command for pid, command in descendants().items() if pid not in before}
    assert left == {}
