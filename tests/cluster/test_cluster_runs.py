"""Pipelines on Dask processes started by hand, reached by ``address`` (tcp and TLS),
and on a cluster manager given by ``cluster_class``.

The seed's examples run as a user runs them (``python examples/06-parallel/...`` from the
repository root) with only ``RUNNABLE_CONFIGURATION_FILE`` changed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest

from runnable_dask import ExecutionFailedError, Pipeline, ShellTask, Stub
from runnable_dask.config import DaskConfig
from runnable_dask.executors.cluster import ClusterError, connect

from .conftest import ROOT, DaskProcesses, write_config

pytestmark = pytest.mark.cluster

WORKFLOW = ["hello_stub", "hello_python", "hello_shell", "hello_notebook"]


def run_example(example: str, config: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env |= {"RUNNABLE_CONFIGURATION_FILE": str(config), "RUNNABLE_RUN_ID": run_id}
    return subprocess.run(
        [sys.executable, example],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_log(folder: Path, run_id: str) -> dict:
    return json.loads((folder / "run_logs" / f"{run_id}.json").read_text(encoding="utf-8"))


def prefixes(cluster: DaskProcesses) -> set[str]:
    with cluster.client() as client:
        return set(
            client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        )


@pytest.mark.parametrize(
    ("example", "branches"),
    [
        ("examples/06-parallel/parallel.py", ["parallel_step.branch1", "parallel_step.branch2"]),
        (
            "examples/06-parallel/nesting.py",
            [
                f"nested_parallel.{o}.parallel_step.{i}"
                for o in ("branch1", "branch2")
                for i in ("branch1", "branch2")
            ],
        ),
    ],
)
def test_seed_example_runs_on_workers_started_elsewhere(
    tcp_cluster: DaskProcesses, tmp_path: Path, example: str, branches: list[str]
) -> None:
    run_id = f"by-address-{Path(example).stem}"
    done = run_example(example, tcp_cluster.config(tmp_path), run_id)

    assert done.returncode == 0, done.stdout + done.stderr
    log = run_log(tmp_path, run_id)
    assert log["status"] == "SUCCESS"
    assert f"Dask scheduler {tcp_cluster.address} (2 workers)" in done.stdout
    seen = prefixes(tcp_cluster)
    assert set(WORKFLOW) <= seen, seen
    assert tcp_cluster.worker_folder != ROOT
    for branch in branches:
        assert (
            tmp_path / "catalog" / run_id / "logs" / f"{branch}.hello_shell.execution.log"
        ).exists()


def test_workers_run_in_their_own_folder(tcp_cluster: DaskProcesses) -> None:
    with tcp_cluster.client() as client:
        folders = set(client.run(os.getcwd).values())
    assert folders == {str(tcp_cluster.worker_folder)}
    assert not str(tcp_cluster.worker_folder).startswith(str(ROOT))


SHELL_SCRIPT = '''
"""Shell and stub steps only: nothing of the user's code has to travel."""
from runnable_dask import Parallel, Pipeline, ShellTask, Stub


def branch():
    return Pipeline(steps=[
        ShellTask(name="where_am_i", command="pwd"),
        ShellTask(name="say", command="echo from-the-worker"),
    ])


if __name__ == "__main__":
    Pipeline(steps=[
        Parallel(name="fan", branches={"a": branch(), "b": branch()}),
        Stub(name="after"),
    ]).execute()
'''


def run_script(folder: Path, config: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    script = folder / "shell_pipeline.py"
    script.write_text(textwrap.dedent(SHELL_SCRIPT), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env |= {"RUNNABLE_CONFIGURATION_FILE": str(config), "RUNNABLE_RUN_ID": run_id}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_shell_pipeline_by_address_runs_in_the_worker_folder(
    tcp_cluster: DaskProcesses, tmp_path: Path
) -> None:
    done = run_script(tmp_path, tcp_cluster.config(tmp_path), "shell-by-address")

    assert done.returncode == 0, done.stdout + done.stderr
    assert run_log(tmp_path, "shell-by-address")["status"] == "SUCCESS"
    step_log = tmp_path / "catalog" / "shell-by-address" / "logs" / "fan.a.where_am_i.execution.log"
    assert str(tcp_cluster.worker_folder) in step_log.read_text(encoding="utf-8")
    assert {"where_am_i", "say", "fan", "after"} <= prefixes(tcp_cluster)


def test_tls_run_through_a_tls_scheduler(tls_cluster: DaskProcesses, tmp_path: Path) -> None:
    config = tls_cluster.config(tmp_path)
    done = run_script(tmp_path, config, "over-tls")

    assert done.returncode == 0, done.stdout + done.stderr
    assert tls_cluster.address.startswith("tls://127.0.0.1:")
    assert f"Dask scheduler {tls_cluster.address} (1 worker)" in done.stdout
    assert run_log(tmp_path, "over-tls")["status"] == "SUCCESS"
    assert {"where_am_i", "say"} <= prefixes(tls_cluster)


def test_tls_scheduler_refuses_a_client_without_certificates(
    tls_cluster: DaskProcesses, tmp_path: Path
) -> None:
    bad = dict(tls_cluster.security or {})
    bad["tls_ca_file"] = str(tmp_path / "missing-ca.pem")
    config = DaskConfig(address=tls_cluster.address, timeout=2, security=bad)
    with pytest.raises(ClusterError, match=r"missing-ca\.pem"), ExitStack() as stack:
        connect(config, stack)


@pytest.mark.timeout(60)  # a hang guard: the configured timeout is 2 s
def test_unreachable_address_fails_naming_it(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    config = write_config(tmp_path, {"address": address, "timeout": 2})
    pipeline = Pipeline(steps=[Stub(name="never")])
    with pytest.raises((ClusterError, ExecutionFailedError), match=address):
        pipeline.execute(configuration_file=str(config), run_id="unreachable")


def test_cluster_class_local_cluster_runs_the_pipeline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("RUNNABLE_")]:
        monkeypatch.delenv(name)
    config = write_config(
        tmp_path,
        {
            "cluster_class": "distributed.LocalCluster",
            "cluster_kwargs": {"n_workers": 1, "threads_per_worker": 2, "processes": False},
        },
    )
    pipeline = Pipeline(steps=[ShellTask(name="echo_it", command="echo managed"), Stub(name="end")])

    log = pipeline.execute(configuration_file=str(config), run_id="managed")

    assert log.status == "SUCCESS"
    assert (
        log.run_config["pipeline-executor"]["config"]["cluster_class"] == "distributed.LocalCluster"
    )


def test_cluster_class_that_cannot_be_imported_names_the_extra() -> None:
    config = DaskConfig(cluster_class="dask_jobqueue.SLURMCluster")
    expected = r"pip install 'runnable_dask\[jobqueue\]'"
    with pytest.raises(ClusterError, match=expected), ExitStack() as stack:
        connect(config, stack)


# --- helpers ---------------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
